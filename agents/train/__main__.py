"""``python -m lmgym.agents.train`` (and ``torchrun ... -m lmgym.agents.train``): the ``lmgym train`` command."""

from lmgym.agents.train.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
