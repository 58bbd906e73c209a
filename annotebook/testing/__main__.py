"""``python -m annotebook.testing serve {nexus,vi} --port N [--key K] [--latency-ms MS] ...``"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from . import SIMULATORS


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m annotebook.testing", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve a platform simulator on 127.0.0.1")
    serve.add_argument("platform", choices=SIMULATORS)
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--key", default=None, help="the only key accepted (default: any non-empty key)")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    serve.add_argument("--rate-limit", type=int, default=0, help="answer 429 to the first N requests")
    serve.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of those 429s, in seconds")
    serve.add_argument("--cut-after", type=int, default=None, help="drop the connection of the N-th write")
    serve.add_argument("--assets", type=int, default=36, help="assets of the seeded project or datasets")
    serve.add_argument(
        "--annotations", type=int, default=None, help="seed synthetic data: this many annotations over --assets"
    )
    args = parser.parse_args(argv)

    import uvicorn

    app: Any
    if args.platform == "vi":
        from .vi_sim import ViState
        from .vi_sim import make_app as vi_app

        state: Any = ViState(key=args.key, n_assets=args.assets, n_annotations=args.annotations)
        app = vi_app(state)
        names = "  ".join(f"{name}={ds_id}" for name, ds_id in state.dataset_ids.items())
        banner = f"Vi simulator: http://{args.host}:{args.port}  organization {state.org_id}  datasets {names}"
    else:
        from .nexus_sim import NexusState
        from .nexus_sim import make_app as nexus_app

        state = NexusState(key=args.key, n_assets=args.assets, n_annotations=args.annotations)
        app = nexus_app(state)
        banner = f"Nexus simulator: http://{args.host}:{args.port}  project {state.project_id}"
    state.faults.update(
        {
            "latency_ms": args.latency_ms,
            "rate_limit": args.rate_limit,
            "retry_after": args.retry_after,
            "cut_after": args.cut_after,
        }
    )
    print(banner, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
