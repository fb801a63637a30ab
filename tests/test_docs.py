"""The guides stay true: every relative link and image resolves, every flag they name exists, and the output
they quote is what the command prints."""

import re
import subprocess
import sys
from functools import cache

import pytest
from helpers import ROOT, load_script

GUIDES = ["README.md", "benchmarks/README.md", *[str(p.relative_to(ROOT)) for p in sorted(ROOT.glob("docs/*.md"))]]
SCRIPTS = ["qlearning_frozenlake.py", "dqn_atari.py", "double_dqn_atari.py"]
TOOLS = ["benchmarks/sweep.py", "benchmarks/report.py"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
OTHER_PROGRAMS = {"pip", "tensorboard", "ray", "diff", "bash", "git", "cd", "for"}  # their flags are not ours


@cache
def help_text(script: str) -> str:
    return subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True,
                          cwd=ROOT).stdout


def anchors(path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def commands(text: str) -> list[str]:
    """Every command line and inline code span of a guide, continuation lines joined."""
    blocks = re.findall(r"```(?:bash|text)?\n(.*?)```", text, flags=re.DOTALL)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return lines + CODE.findall(re.sub(r"```.*?```", "", text, flags=re.DOTALL))


def flags_and_owners(command: str) -> list[tuple[list[str], list[str]]]:
    """The flags of a command, each group with the scripts whose --help must list them: the script it runs (for a
    sweep, the flags after `--` go to the swept scripts), or any script or tool of ours for a flag named in prose.
    Another program's command (pip, tensorboard, ...) has none of ours."""
    command = command.split("#")[0]
    words = command.split()
    runs_a_script = len(words) > 1 and words[0] == "python" and words[1].endswith(".py")
    if not words or words[0] in OTHER_PROGRAMS or (words[0] == "python" and not runs_a_script):
        return []
    if words[0] != "python":
        return [(FLAG.findall(command), SCRIPTS + TOOLS)]
    own, _, passed_on = command.partition(" -- ")
    return [(FLAG.findall(own), [words[1]]), (FLAG.findall(passed_on), SCRIPTS)]


@pytest.mark.parametrize("guide", GUIDES)
def test_every_relative_link_and_image_of_a_guide_resolves(guide):
    path = ROOT / guide
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{guide}: {target} does not exist"
        assert not anchor or anchor in anchors(linked), f"{guide}: {target} names no heading of {linked.name}"


@pytest.mark.parametrize("guide", GUIDES)
def test_every_flag_a_guide_names_is_in_the_help_of_its_script(guide):
    missing = []
    for command in commands((ROOT / guide).read_text()):
        for flags, owners in flags_and_owners(command):
            missing += [f"{flag} ({' or '.join(owners)})" for flag in flags
                        if not any(re.search(rf"{flag}\b", help_text(owner)) for owner in owners)]
    assert not missing, f"{guide} names flags that no --help lists: {missing}"


def test_the_flag_check_sees_a_flag_that_does_not_exist():
    """The check above can fail: a made-up flag, in prose and in a command, is reported."""
    assert flags_and_owners("python dqn_atari.py --no-such-flag 1") == [
        (["--no-such-flag"], ["dqn_atari.py"]), ([], SCRIPTS)]
    assert not re.search(r"--no-such-flag\b", help_text("dqn_atari.py"))
    assert flags_and_owners("python benchmarks/sweep.py --seeds 1 -- --seed 2") == [
        (["--seeds"], ["benchmarks/sweep.py"]), (["--seed"], SCRIPTS)]
    assert flags_and_owners("--resume runs/x") == [(["--resume"], SCRIPTS + TOOLS)]
    assert flags_and_owners("pip install --no-deps x") == []


def test_the_summary_the_readme_quotes_is_what_the_default_tabular_run_prints(tmp_path, capsys):
    """`python qlearning_frozenlake.py` (seed 1, every draw seeded) prints every line of the README's summary."""
    (quoted,) = re.findall(r"```text\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    ql = load_script("qlearning_frozenlake")
    ql.main(ql.Args(runs_dir=str(tmp_path)))
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in quoted.splitlines() if line not in printed] == []
