"""``python -m reference`` that records every file it writes: for tests/test_distributed.py.

    torchrun ... tests/helpers/record_writes.py LOG_DIR [reference options]

An audit hook (PEP 578) notes each path this process opens for writing, creates or
renames into place; at exit the list goes to LOG_DIR/rank-$RANK.json (written after
the hook stops recording). Then each process's writes can be checked separately.
"""

import json
import os
import runpy
import sys

WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND
written = []
recording = True


def audit(event, args):
    if not recording:
        return
    if event == "open":
        path, mode, flags = args
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & WRITING)
        if writes and isinstance(path, (str, bytes, os.PathLike)):
            written.append(os.fsdecode(path))
    elif event in ("os.rename", "os.mkdir", "os.remove"):
        written.append(f"{event} {os.fsdecode(args[1] if event == 'os.rename' else args[0])}")


def main():
    global recording
    log_dir = sys.argv.pop(1)
    sys.argv[0] = "python -m reference"
    sys.addaudithook(audit)
    try:
        runpy.run_module("reference", run_name="__main__", alter_sys=True)
    finally:
        recording = False
        ignored = (os.devnull,)
        with open(os.path.join(log_dir, f"rank-{os.environ.get('RANK', 'none')}.json"), "w") as f:
            json.dump([p for p in written if p not in ignored], f)


main()
