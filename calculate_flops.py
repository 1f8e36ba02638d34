"""FLOPs / params of an exported subnet symbol; see ``python calculate_flops.py --help``."""
import sys

from oneshot_nas.cli.calculate_flops import main

if __name__ == "__main__":
    sys.exit(main())
