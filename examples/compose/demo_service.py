#!/usr/bin/env python3
"""One of `make run`'s demo backends in a container of its own: `demo_service.py NAME` starts the
process `examples/run_demo.py` starts under NAME (the same call, so the same command, port and
arguments), waits until it is ready, then follows its log on stdout until it exits.

Used by examples/compose/compose.yaml; every service there shares one network namespace, so the
addresses of examples/airouter.toml (127.0.0.1) are right as they are.
"""

import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from run_demo import backends  # noqa: E402
from stack import Stack  # noqa: E402


def main(name):
    stack = Stack()
    starts = dict(backends(stack))
    if name not in starts:
        print("unknown service %s; one of %s" % (name, ", ".join(starts)), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        starts[name]()
        _, proc, log = stack.procs[-1]
        with open(log, "rb") as f:
            while True:
                chunk = f.read()
                if chunk:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                elif proc.poll() is not None:
                    return proc.returncode
                else:
                    time.sleep(0.5)
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
