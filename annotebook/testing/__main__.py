"""``python -m annotebook.testing serve PLATFORM [--port N] [--key K] [--json] [--latency-ms MS] ...``

Prints one line once the simulator listens (so ``--port 0`` prints the port it got): for a person, the URL and the
``ab.connect`` call; with ``--json``, ``{"url", "platform", "connect", "dataset", "key_env"}`` for a script.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from . import SIMULATORS, start


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m annotebook.testing", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a platform simulator on 127.0.0.1")
    serve.add_argument("platform", choices=(*SIMULATORS, "labelstudio"))
    serve.add_argument("--port", type=int, default=8765, help="0: any free port (the line printed names it)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--key", default=None, help="the only key accepted (default: any non-empty key)")
    serve.add_argument("--json", action="store_true", help="print the connection as one JSON line")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    serve.add_argument("--rate-limit", type=int, default=0, help="answer 429 to the first N requests")
    serve.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of those 429s, in seconds")
    serve.add_argument("--cut-after", type=int, default=None, help="drop the connection of the N-th write")
    serve.add_argument("--fail-after", type=int, default=None, help="apply the N-th write, then answer it 500")
    serve.add_argument("--reject-after", type=int, default=None, help="answer the N-th write 503, not applied")
    serve.add_argument("--truncate", type=int, default=0, help="cut the JSON of the first N 2xx answers in half")
    serve.add_argument("--assets", type=int, default=36, help="assets of the seeded project or datasets")
    serve.add_argument(
        "--annotations", type=int, default=None, help="seed synthetic data: this many annotations over --assets"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.platform == "labelstudio":  # the real server, from its cached venv: no simulator, no fault switches
        from .labelstudio_server import TOKEN, serve

        serve(port=args.port, token=args.key or TOKEN, n_assets=args.assets, as_json=args.json)
        return
    sim = start(args.platform, host=args.host, port=args.port, log_level="warning", key=args.key,
                n_assets=args.assets, n_annotations=args.annotations)  # fmt: skip
    sim.state.faults.update(
        {
            "latency_ms": args.latency_ms,
            "rate_limit": args.rate_limit,
            "retry_after": args.retry_after,
            "cut_after": args.cut_after,
            "fail_after": args.fail_after,
            "reject_after": args.reject_after,
            "truncate": args.truncate,
        }
    )
    info = sim.connect_info()
    print(json.dumps(info.as_json()) if args.json else info.line(), flush=True)
    thread = sim.server.thread
    try:
        while thread.is_alive():  # a join with a timeout lets Ctrl-C through
            thread.join(0.5)
    except KeyboardInterrupt:
        sim.stop()


if __name__ == "__main__":
    main()
