"""``python -m wsd`` (and ``torchrun -m wsd train ...``)."""

from wsd.cli.main import main

main()
