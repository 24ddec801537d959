"""The team section of ``bench/RESULTS.md``: queue latency and throughput, and the parser."""

from __future__ import annotations

import datetime as dt
import subprocess
import tempfile
from importlib import metadata

import results_page
import team_queue
from results import markdown_table, median
from team_bench import percentile

BEGIN = "<!-- team benchmarks: begin; bench/run.py team rewrites this section -->"
END = "<!-- team benchmarks: end -->"
TARGET_LATENCY_MS = 10.0
TARGET_PER_S = 1_000.0
DISTRIBUTIONS = ("tinysdlc-nb", "SQLAlchemy")

SIDE_TITLES = {
    "ours": "tinysdlc-nb, one message per claim",
    "ours_batch": f"tinysdlc-nb, up to {team_queue.BATCH_SIZE} per claim",
    "folder": "folder of JSON files, listed every 1 s",
}

METHOD = """\
- Every part runs once per side and round, on a new project (tinysdlc-nb, SQLite store
  in a temporary folder) or a new queue folder (the baseline, `bench/folder_queue.py`).
  The producer is the benchmark process; the consumer is one separate process
  (`bench/team_worker.py`). For tinysdlc-nb that process runs the real worker
  (`build_worker`, `concurrency=1`, the default `[team]` settings) with an agent
  registered through `register_provider` that replies "ok" at once.
- The producer enqueues as `tinysdlc-nb send` does: `route_user_message` and
  `start_conversation`, one transaction per message. The baseline writes a JSON file
  under a temporary name in `incoming/` and renames it.
- On each hand-over the agent appends the message's key and `time.time()` to a log with
  one `O_APPEND` write. Producer and consumer read the same clock.
- Latency: messages enqueued one at a time at a fixed pace while the consumer waits.
  A message's latency runs from the start of its enqueue call to its hand-over, so it
  includes the enqueue's own commit; "after the enqueue returned" leaves that out.
  For tinysdlc-nb the store's `started_at - created_at` is shown as a check.
- Drain: the messages are queued first (tinysdlc-nb in one transaction, through
  `insert_conversation`), then the consumer starts with `--once`. The time runs from
  the start of its loop (imports done, store open) to the last reply stored
  (`finished_at` of the last message; the baseline's newest reply file).
- Concurrent: the consumer already waits; the producer enqueues every message as fast
  as it can, one call per message. The time runs from the first enqueue to the last
  reply stored.
- "Other processes' CPU" is the machine's busy CPU time from `/proc/stat` over the part,
  minus the producer's and the consumer's own; a large value means other work on the
  machine slowed the part.
- The profile runs the worker loop (`Worker.process_one` until the queue is empty) in
  the consumer's main thread under cProfile, which slows Python code down, so its
  figures are shares rather than speeds.
- Parser: `tags.parse_tags`, `routing.route` (sender `devops`) and the regex
  `\\[@(\\S+?):\\s*([\\s\\S]*?)\\]` with `re.finditer` run over the same corpus in the
  same process, each for several whole passes; the figures are the median pass."""


def section(data: dict, options: str, started: dt.datetime, revision: str) -> str:
    """Return the whole team section, between its BEGIN and END markers."""
    command = f".venv/bin/python bench/run.py {options}".rstrip()
    parts = [
        BEGIN,
        "# Benchmark: team messaging queue and hand-off parser",
        f"Written by `bench/run.py` on {started:%Y-%m-%d %H:%M} UTC, {_rounds(data['rounds'])}, "
        f"on tinysdlc-nb {revision}. `make bench` runs it after the incident benchmarks; "
        f"running the command below rewrites only this section.\n\n```\n{command}\n```",
        "## Targets\n\n" + markdown_table(_target_rows(data))
        + "\n\nA latency target is judged on the time from the start of the enqueue call, "
          "which includes the enqueue's own commit.",
        "## Reading the result\n\n" + "\n".join(_reading(data)),
        "## Queue latency\n\n" + _latency(data),
        "## Queue throughput\n\n" + _throughput(data),
        "## Where the worker's time goes\n\n" + _profiles(data["profiles"]),
        "## Hand-off parser\n\n" + _parser(data["parse"]),
        "## How the team benchmarks are measured\n\n" + METHOD,
        "## Machine and versions\n\n" + markdown_table([["what", "value"], *_machine(data)]),
        END,
    ]
    return "\n\n".join(parts) + "\n"


def replace_section(page: str, new_section: str) -> str:
    """Return ``page`` with its team section replaced by ``new_section``, or appended."""
    return results_page.replace_section(page, new_section, BEGIN, END)


def kept_section(page: str) -> str:
    """Return the team section of ``page`` with its markers, or "" if there is none."""
    return results_page.kept_section(page, BEGIN, END)


def latency_stats(runs: list[dict], key: str = "latency_ms") -> dict[str, float]:
    """Return the median over rounds of each round's median, p99 and maximum of ``key``."""
    return {"median": median([percentile(run[key], 50) for run in runs]),
            "p99": median([percentile(run[key], 99) for run in runs]),
            "max": median([max(run[key]) for run in runs])}


def _target_rows(data: dict) -> list[list[str]]:
    queue, sizes = data["queue"], data["sizes"]
    rows = [["target", "side", "measured", "met"]]
    for side in ("ours", "ours_batch"):
        runs = queue["latency"][side]
        latency = latency_stats(runs)["median"]
        after = latency_stats(runs, "after_enqueue_ms")["median"]
        rows.append([f"median enqueue-to-start latency at most {TARGET_LATENCY_MS:g} ms "
                     f"({sizes['latency_messages']} messages, one every "
                     f"{sizes['latency_interval_s'] * 1000:g} ms)", SIDE_TITLES[side],
                     f"{latency:.1f} ms from the enqueue call ({after:.1f} ms from its "
                     f"return)", _met(latency <= TARGET_LATENCY_MS)])
    for part, title in (("drain", "drain"), ("concurrent", "producer and worker at once")):
        for side in ("ours", "ours_batch"):
            rate = median([run["per_s"] for run in queue[part][side]])
            rows.append([f"at least {TARGET_PER_S:,.0f} messages/s through one worker on "
                         f"SQLite ({title}, {sizes['messages']:,} messages)",
                         SIDE_TITLES[side], f"{rate:,.0f} messages/s",
                         _met(rate >= TARGET_PER_S)])
    return rows


def _reading(data: dict) -> list[str]:
    queue, parse = data["queue"], data["parse"]
    rates = {(part, side): median([run["per_s"] for run in queue[part][side]])
             for part in ("drain", "concurrent") for side in queue[part]}
    best_part, best_side = max((key for key in rates if key[1] != "folder"), key=rates.get)
    best = rates[(best_part, best_side)]
    ours = latency_stats(queue["latency"]["ours"])
    enqueue = latency_stats(queue["latency"]["ours"], "enqueue_ms")["median"]
    folder = latency_stats(queue["latency"]["folder"])["median"]
    lines = [
        f"- Throughput: the best tinysdlc-nb rate is {best:,.0f} messages/s "
        f"({SIDE_TITLES[best_side]}, {best_part}), "
        + (f"{TARGET_PER_S - best:,.0f} messages/s ({1 - best / TARGET_PER_S:.0%}) short of "
           f"the target. " if best < TARGET_PER_S else "which meets the target. ")
        + f"The folder baseline, with no transaction and no fsync, drains "
          f"{rates[('drain', 'folder')]:,.0f} messages/s, and "
          f"{rates[('concurrent', 'folder')]:,.0f} messages/s with the producer running "
          f"at the same time.",
        _concurrent_reading(queue),
        f"- Latency: tinysdlc-nb's median is {ours['median']:.1f} ms from the enqueue call, "
        f"of which the call itself takes {enqueue:.1f} ms (one transaction, synced to "
        f"disk). The baseline's median, {folder:.0f} ms, is the wait for its next listing, "
        f"which comes once a second.",
    ]
    for side, profile in data["profiles"].items():
        commit = next((row for row in profile["top_own"]
                       if "commit' of 'sqlite3.Connection" in row["function"]), None)
        if commit is not None:
            lines.append(
                f"- Profile, {SIDE_TITLES[side]}: SQLite commits take "
                f"{commit['own_s'] / profile['total_s']:.0%} of the loop's time, "
                f"{commit['calls']:,} commits for {profile['messages']} messages "
                f"({commit['calls'] / profile['messages']:.2f} per message). The worker's "
                f"connections commit with `synchronous=NORMAL` in WAL mode, without a "
                f"sync to disk.")
    lines.append(_parser_reading(parse))
    busy = _busy_parts(queue)
    if busy:
        lines.append("- Other processes used the CPU during " + "; ".join(busy) + ", so "
                     "those figures are likely lower than on an idle machine.")
    return lines


def _busy_parts(queue: dict) -> list[str]:
    """Return the parts where other processes used over half a core on average."""
    busy = []
    for part in ("drain", "concurrent"):
        for side, runs in queue[part].items():
            other = median([run["other_cpu_s"] for run in runs])
            seconds = median([run.get("drain_s", run.get("total_s")) for run in runs])
            if other > 0.5 * seconds:
                busy.append(f"{part} ({SIDE_TITLES[side]}: {other:.0f} s of CPU in "
                            f"{seconds:.0f} s)")
    return busy


def _concurrent_reading(queue: dict) -> str:
    parts = []
    for side in ("ours", "ours_batch"):
        runs = queue["concurrent"][side]
        enqueue = median([run["count"] / run["produce_s"] for run in runs])
        rate = median([run["per_s"] for run in runs])
        drain = median([run["per_s"] for run in queue["drain"][side]])
        parts.append(f"{SIDE_TITLES[side]}: the worker delivered {rate:,.0f} messages/s "
                     f"({drain:,.0f} in the drain) while the producer enqueued "
                     f"{enqueue:,.0f} messages/s")
    return ("- With producer and worker at once, both take turns at SQLite's single write "
            "lock, and the producer commits once per message. " + "; ".join(parts) + ".")


def _parser_reading(parse: dict) -> str:
    ours, regex = parse["correctness"]["parse_tags"], parse["correctness"]["regex"]
    seconds = {name: median(passes) for name, passes in parse["seconds"].items()}
    causes = regex["missed_by_cause"]
    return (
        f"- Parser: `parse_tags` takes {seconds['parse_tags'] / seconds['regex']:.0f} times "
        f"as long as the regex. Of the {parse['corpus']['tags']} tags the generator wrote, "
        f"it finds {ours['exact']} exactly, with {ours['cut'] + ours['missed']} cut or "
        f"missed and {ours['false']} false. The regex finds {regex['exact']} exactly. It "
        f"cuts {regex['cut']} at the first `]` inside the body (a bracketed note, a link or "
        f"code) and misses {regex['missed']}: {causes['spaced_ids']} with a space after "
        f"the comma between ids, {causes['inside_other_match']} swallowed by an earlier "
        f"match that ran past their start, and {causes['other']} otherwise. It also "
        f"reports {regex['false']} matches where the generator wrote no tag; the "
        f"generator writes tag-like text only in code spans and fenced blocks.")


def _latency(data: dict) -> str:
    queue, sizes = data["queue"], data["sizes"]
    rows = [["pace", "side", "median (ms)", "p99 (ms)", "max (ms)",
             "median after the enqueue returned (ms)", "median enqueue call (ms)",
             "other processes' CPU (s)"]]
    for part, count, interval in (
            ("latency", sizes["latency_messages"], sizes["latency_interval_s"]),
            ("slow_latency", sizes["slow_messages"], sizes["slow_interval_s"])):
        for side, runs in queue[part].items():
            stats = latency_stats(runs)
            rows.append([f"{count} messages, one every {interval * 1000:g} ms",
                         SIDE_TITLES[side], f"{stats['median']:.1f}", f"{stats['p99']:.1f}",
                         f"{stats['max']:.1f}",
                         f"{latency_stats(runs, 'after_enqueue_ms')['median']:.1f}",
                         f"{latency_stats(runs, 'enqueue_ms')['median']:.1f}",
                         f"{median([run['other_cpu_s'] for run in runs]):.1f}"])
    checks = []
    for part in ("latency", "slow_latency"):
        for side in ("ours", "ours_batch"):
            stats = latency_stats(queue[part][side], "store_wait_ms")
            checks.append(f"{stats['median']:.1f} ms ({part.replace('_', ' ')}, "
                          f"{SIDE_TITLES[side]})")
    return "\n\n".join([
        markdown_table(rows),
        "The store's own `started_at - created_at`, median: " + "; ".join(checks) + ".",
        f"The worker looks at the queue every {data['poll_interval_s'] * 1000:g} ms when "
        f"it is idle (`[team].poll_interval_s`)."])


def _throughput(data: dict) -> str:
    queue = data["queue"]
    rows = [["part", "side", "messages", "seconds", "messages/s",
             "consumer CPU per message (ms)", "other processes' CPU (s)"]]
    for part, title in (("drain", "drain a queued backlog"),
                        ("concurrent", "producer and worker at once")):
        for side, runs in queue[part].items():
            seconds = median([run.get("drain_s", run.get("total_s")) for run in runs])
            cpu = median([run["consumer_cpu_s"] / run["count"] * 1000 for run in runs])
            rows.append([title, SIDE_TITLES[side], f"{runs[0]['count']:,}", f"{seconds:.2f}",
                         f"{median([run['per_s'] for run in runs]):,.0f}", f"{cpu:.2f}",
                         f"{median([run['other_cpu_s'] for run in runs]):.1f}"])
    enqueue = []
    for side, runs in queue["concurrent"].items():
        rate = median([run["count"] / run["produce_s"] for run in runs])
        enqueue.append(f"{SIDE_TITLES[side]} {rate:,.0f} messages/s")
    return "\n\n".join([
        markdown_table(rows),
        "Enqueue rate of the producer in the concurrent part, one call per message: "
        + "; ".join(enqueue) + "."])


def _profiles(profiles: dict) -> str:
    parts = []
    for side, profile in profiles.items():
        # The profiler's own bookkeeping can make a cumulative time exceed the total.
        total = max([profile["total_s"], *(row["cumulative_s"]
                                           for row in profile["product_cumulative"])])
        own = [["function (own time)", "calls", "own s", "share"]]
        for row in profile["top_own"]:
            own.append([f"`{row['function']}`", f"{row['calls']:,}", f"{row['own_s']:.3f}",
                        f"{row['own_s'] / total:.0%}"])
        product = [["tinysdlc_nb function (cumulative)", "calls", "cumulative s", "share"]]
        for row in profile["product_cumulative"]:
            product.append([f"`{row['function']}`", f"{row['calls']:,}",
                            f"{row['cumulative_s']:.3f}",
                            f"{row['cumulative_s'] / total:.0%}"])
        parts.append(f"### {SIDE_TITLES[side]}: {profile['messages']} messages, "
                     f"{profile['total_s']:.2f} s under cProfile "
                     f"({profile['total_s'] / profile['messages'] * 1000:.2f} ms per "
                     f"message)\n\n{markdown_table(own)}\n\n{markdown_table(product)}")
    return "\n\n".join(parts)


def _parser(parse: dict) -> str:
    corpus, seconds = parse["corpus"], parse["seconds"]
    megabytes = corpus["bytes"] / 1e6
    rows = [["way", "median pass (ms)", "MB/s", "replies/s"]]
    titles = {"parse_tags": "`tags.parse_tags`", "route": "`routing.route`",
              "regex": "regex baseline (`re.finditer`)"}
    for name, passes in seconds.items():
        pass_s = median(passes)
        rows.append([titles[name], f"{pass_s * 1000:.1f}", f"{megabytes / pass_s:,.1f}",
                     f"{corpus['replies'] / pass_s:,.0f}"])
    found = [["way", "exact", "cut or wrong ids", "missed", "false (no tag there)"]]
    for name, score in parse["correctness"].items():
        found.append([titles[name], str(score["exact"]), str(score["cut"]),
                      str(score["missed"]), str(score["false"])])
    examples = [f"- {kind} by the regex: `{text}`" for kind, text in
                parse["correctness"]["regex"]["examples"].items()]
    return "\n\n".join([
        f"The corpus (`bench/team_corpus.py`, seed {corpus['seed']}) has {corpus['replies']} "
        f"replies, {corpus['bytes']:,} bytes of UTF-8 ({corpus['min_bytes']:,} to "
        f"{corpus['max_bytes']:,} bytes, median {corpus['median_bytes']:,.0f}), with "
        f"{corpus['tags']} tags written by the generator. Median of {parse['passes']} passes.",
        markdown_table(rows),
        f"Tags found, against the {corpus['tags']} the generator wrote:",
        markdown_table(found),
        "First example of each kind of difference:\n\n" + "\n".join(examples)])


def _met(condition: bool) -> str:
    return "met" if condition else "**not met**"


def _rounds(count: int) -> str:
    return f"{count} round{'s' if count != 1 else ''}"


def _machine(data: dict) -> list[list[str]]:
    rows = results_page._machine()
    sqlite = data["sqlite"]
    rows.append(["SQLite (sqlite3.sqlite_version)", sqlite["sqlite_version"]])
    rows.append(["SQLite journal_mode, synchronous (enqueue side; the worker uses NORMAL)",
                 f"{sqlite['journal_mode']}, {sqlite['synchronous']}"])
    rows.append(["file system of the temporary folder", _file_system()])
    for name in DISTRIBUTIONS:
        try:
            rows.append([name, metadata.version(name)])
        except metadata.PackageNotFoundError:
            rows.append([name, "not installed"])
    return rows


def _file_system() -> str:
    folder = tempfile.gettempdir()
    try:
        completed = subprocess.run(["df", "--output=fstype", folder], stdout=subprocess.PIPE,
                                   text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return f"unknown ({folder})"
    return f"{completed.stdout.split()[-1]} ({folder})"
