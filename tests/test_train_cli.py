"""train_imagenet.py command line: every flag of docs/design.md (section 6) listed, bad values
exit 2 in one line."""
import re
import subprocess
import sys

import pytest

from oneshot_nas.cli.train_imagenet import build_parser

FLAGS = """--rec-train --rec-train-idx --rec-val --rec-val-idx --use-rec --data-dir --batch-size
--num-gpus -j --dtype --num-epochs --lr --lr-mode --lr-decay --lr-decay-period --lr-decay-epoch
--warmup-lr --warmup-epochs --momentum --wd --no-wd --label-smoothing --mixup --mixup-alpha
--mixup-off-epoch --teacher --temperature --hard-weight --mode --input-size --crop-ratio
--save-frequency --save-dir --resume-epoch --resume-params --resume-states --log-interval
--logging-file --model --block-choices --channel-choices --channels-layout --use-se
--last-conv-after-pooling --use-all-blocks --use-all-channels --epoch-start-cs --cs-warm-up
--ignore-first-two-cs --reduced-dataset-scale --train-upper-constraints
--train-bottom-constraints --train-constraint-method --flop-param-method --teacher-params
--auto-resume --horovod --dataset""".split()


def test_help_lists_every_spec_flag():
    text = build_parser().format_help()
    for flag in FLAGS:
        assert re.search(r"(^|[\s,\[])%s[\s,=\]]" % re.escape(flag), text), flag


def _run(args, tmp_path):
    return subprocess.run([sys.executable, "train_imagenet.py", "--logging-file",
                           str(tmp_path / "log.txt"), "--save-dir", str(tmp_path)] + args,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,needle", [
    (["--model", "ResNet9"], "unknown --model 'ResNet9'"),
    (["--model", "ShuffleNas_fixArch", "--block-choices", "0,1,2"],
     "block choices: expected 20 values, got 3"),
    (["--channel-choices", "0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,12"],
     "channel choices: position 19 is 12, must be in 0..9"),
    (["--lr-mode", "linear"], "invalid choice: 'linear'"),
    (["--train-upper-constraints", "330"], "flops-<MFLOPs>-params-<M params>"),
    (["--use-rec", "--rec-train", "/nonexistent/train.rec", "--rec-train-idx",
      "/nonexistent/train.idx", "--num-epochs", "1"], "/nonexistent/train."),
])
def test_bad_values_exit_2_with_one_line(args, needle, tmp_path):
    proc = _run(args, tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [l for l in proc.stderr.splitlines() if "error:" in l]
    assert len(errors) == 1 and needle in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
