"""Run the Meltano CLI with one upstream bug worked around, for `meltano config test` on loaders.

Meltano 4.4.1's LoaderTestService calls ``process.terminate()`` in a ``finally`` after the loader
has already exited; asyncio then raises ProcessLookupError (most runs on Python 3.11), Meltano
crashes and hides the loader's verdict. Ignoring that one error is all this wrapper does.
"""

from __future__ import annotations

import asyncio.subprocess
import contextlib
import sys

from meltano.cli import main

_terminate = asyncio.subprocess.Process.terminate


def _terminate_if_running(self: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has exited already
        _terminate(self)


asyncio.subprocess.Process.terminate = _terminate_if_running  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
