"""`python -m mia_bench --help`, made from the config files themselves: each group's options
with the first sentence of the comment that opens each file, and the most used keys with the
comment above them (meaning, range) and their default. A new option or a changed comment shows
up in the help without anyone editing it.

Hydra's help template is `hydra.help.template` (conf/config.yaml); it points at the resolver
`mia_bench_help` that cli.py registers, so the text is made only when `--help` asks for it.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

# The keys a user changes most, in this order: (file under conf/, prefix shown in the help).
KEY_FILES = (
    ("config.yaml", ""),
    ("trainer/default.yaml", "trainer."),
    ("split/relaxloss.yaml", "split."),
    ("shadow/default.yaml", "shadow."),
)
# Groups that are not user choices or are listed differently.
SKIP_GROUPS = {"hydra", "defense_spec"}
WIDTH = 96
MAX_SUMMARY = 200
# A full stop after these does not end the sentence.
ABBREVIATIONS = {"al", "e.g", "i.e", "sec", "app", "fig", "eq", "vs", "cf", "etc"}


def _comment(line: str) -> str | None:
    s = line.strip()
    if not s.startswith("#"):
        return None
    return s[1:].strip()


def file_summary(path: Path) -> str:
    """The first sentence of the comment block that opens `path` (`# @package` lines skipped)."""
    text: list[str] = []
    for line in path.read_text().splitlines():
        c = _comment(line)
        # the block ends at code, a blank comment line or an indented (list, command) line
        if c is None or (not c and text) or line.lstrip().startswith("#  "):
            break
        if not c.startswith("@package"):
            text.append(c)
    joined = " ".join(text)
    for m in re.finditer(r"\.(\s+|$)", joined):
        word = re.findall(r"[\w.]+$", joined[: m.start()])
        if word and word[0].lower() in ABBREVIATIONS:
            continue
        rest = joined[m.end() :]
        if not rest or rest[0].isupper() or rest[0].isdigit():
            joined = joined[: m.start() + 1]
            break
    if len(joined) > MAX_SUMMARY:
        joined = joined[: joined.rfind(" ", 0, MAX_SUMMARY)] + " ..."
    return joined


def key_docs(path: Path) -> list[tuple[str, str, str]]:
    """(key, default as written, comment directly above it) of every key in `path` that has
    one, top level and one level down (`paths.cache_dir`); the `hydra` and `defaults`
    sections are skipped."""
    out: list[tuple[str, str, str]] = []
    block: list[str] = []
    parent = None
    opening = True  # the comment that opens the file describes the file, not its first key
    for line in path.read_text().splitlines():
        if not line.strip():
            opening, block = False, []
            continue
        c = _comment(line)
        if c is not None:
            # "--- speed ---" and the like head a section, they do not describe a key
            if not c.startswith(("@package", "---")) and not opening:
                block.append(c)
            continue
        opening = False
        m = re.match(r"^( *)([A-Za-z_][\w]*):\s*(.*?)\s*$", line)
        if not m:
            block = []
            continue
        indent, key, value = m.groups()
        if not indent:
            parent = key if not value else None
            if parent in ("hydra", "defaults"):
                parent = "#skip"
        elif parent is None or parent == "#skip" or len(indent) > 2:
            block = []
            continue
        full = f"{parent}.{key}" if indent else key
        # `name` repeats the option chosen in the group (split=relaxloss)
        if block and value and parent != "#skip" and key != "name":
            out.append((full, value, " ".join(block)))
        block = []
    return out


def _wrap(text: str, indent: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > WIDTH - indent:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        lines.append(cur)
    return [" " * indent + line for line in lines]


def groups(conf: Path) -> dict[str, list[tuple[str, str]]]:
    """group -> [(option, summary)], sorted."""
    out = {}
    for folder in sorted(p for p in conf.iterdir() if p.is_dir() and p.name not in SKIP_GROUPS):
        opts = [(f.stem, file_summary(f)) for f in sorted(folder.glob("*.yaml"))]
        if opts:
            out[folder.name] = opts
    return out


def defaults(conf: Path) -> dict[str, str]:
    """group -> its default option(s) in config.yaml's defaults list."""
    out = {}
    for entry in yaml.safe_load((conf / "config.yaml").read_text()).get("defaults", []):
        if isinstance(entry, dict):
            for k, v in entry.items():
                k = k.split(" ")[-1]
                if "${" not in str(v):
                    out[k] = ",".join(v) if isinstance(v, list) else str(v)
    return out


def help_text(conf: str | Path) -> str:
    """The whole help screen (plain text; `$` doubled for Hydra's string.Template)."""
    conf = Path(conf)
    lines = [
        "mia_bench: train a target and shadow models, attack the target with membership-",
        "inference attacks, and report how much it leaks (attack AUC, TPR at low FPR) and what",
        "a defense costs in test accuracy.",
        "",
        "  python -m mia_bench [GROUP=OPTION ...] [KEY=VALUE ...]   one experiment",
        "  python -m mia_bench -m defense=none,relaxloss seed=0,1,2 a sweep, one job per combination",
        "  python -m mia_bench.report DIR                           tables and plots of runs",
        "  python -m mia_bench --cfg job [GROUP=OPTION ...]         every key with its value",
        "",
        "== Config groups: GROUP=OPTION (default in brackets); the files are in conf/GROUP/ ==",
    ]
    default = defaults(conf)
    for group, opts in groups(conf).items():
        head = f"{group} [{default[group]}]" if group in default else group
        if group == "experiment":
            head += " (add with +experiment=NAME: a paper's setting)"
        if group == "attack":
            head += " (several at once: attack=[loss,nn])"
        lines.append(head)
        width = max(len(o) for o, _ in opts)
        for opt, summary in opts:
            body = _wrap(summary, 4 + width + 2)
            first = body[0].strip() if body else ""
            lines.append(f"    {opt.ljust(width)}  {first}")
            lines += body[1:]
    lines += [
        "",
        "== Most used keys: KEY=VALUE (default after '=') ==",
    ]
    for rel, prefix in KEY_FILES:
        for key, value, doc in key_docs(conf / rel):
            lines.append(f"  {prefix}{key}={value}")
            lines += _wrap(doc, 6)
    lines += [
        "",
        "Each option's own keys (defense.alpha, attack.nn.epochs, model.hidden, ...) are in its",
        "file under conf/, with their meaning; e.g. defense=relaxloss defense.alpha=2.0.",
        "Wrong names and values stop the run with one line naming the key (exit status 2);",
        "HYDRA_FULL_ERROR=1 shows the traceback instead. Hydra's own flags (--cfg, --multirun,",
        "--info, shell completion): python -m mia_bench --hydra-help",
    ]
    return "\n".join(lines).replace("$", "$$")
