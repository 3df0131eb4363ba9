"""Run localstripe for tests: loopback only, on a port the OS picks, never touching disk.

localstripe itself binds every interface and writes /tmp/localstripe.pickle on every write
(its path is hard-coded, so TMPDIR, HOME or the working directory cannot move it). Two test
runs on one machine would then share and clobber that file. This launcher imports
localstripe, turns its disk persistence into no-ops (so every run starts from scratch, which
is what `--from-scratch` only half does) and serves the same aiohttp app on 127.0.0.1.

Usage: python tests/support/localstripe_server.py [--port N]
Prints "LOCALSTRIPE_PORT=<n>" on stdout once the socket is listening.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)

    from localstripe import resources

    # Never read or write /tmp/localstripe.pickle: isolation between runs and speed
    # (localstripe pickles the whole store on every write otherwise).
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None

    from aiohttp import web
    from localstripe.server import app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    print(f"LOCALSTRIPE_PORT={sock.getsockname()[1]}", flush=True)

    if not args.quiet:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    web.run_app(app, sock=sock, access_log=None if args.quiet else logging.getLogger("aiohttp.access"),
                print=None, handle_signals=True)


if __name__ == "__main__":
    main()
