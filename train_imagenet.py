"""Train the SPOS supernet or a fixed subnet; see `python train_imagenet.py --help`."""
import sys

from oneshot_nas.cli.train_imagenet import main

if __name__ == "__main__":
    sys.exit(main())
