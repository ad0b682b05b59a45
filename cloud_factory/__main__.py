"""`python -m cloud_factory …`: the console script's entry, for processes started by another (the
worker supervisor's children show as `python -m cloud_factory worker KIND` in a process list)."""

from cloud_factory.entry import main

main()
