"""Search subnets of a trained supernet; see `python search_supernet.py --help`."""
import sys

from oneshot_nas.cli.search_supernet import main

if __name__ == "__main__":
    sys.exit(main())
