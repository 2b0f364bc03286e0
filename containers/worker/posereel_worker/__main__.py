"""``python -m posereel_worker --job-id J --chunk N --bucket B --device gpu|cpu``: one chunk;
``python -m posereel_worker stage NAME --job-id J --source JSON``: one stage (posereel_worker.stage)."""

import sys


def run(args: list[str]) -> int:
    if args[:1] == ["stage"]:
        from posereel_worker.stage import main as stage_main

        return stage_main(args[1:])
    from posereel_worker.worker import main

    return main(args)


sys.exit(run(sys.argv[1:]))
