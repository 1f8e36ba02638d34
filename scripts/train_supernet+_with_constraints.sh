#!/bin/sh
# Supernet training restricted to the FLOPs / params box of docs/design.md, section 4 (ImageNet units),
# sampled by strolling evolution so that the whole box is covered.
exec sh "$(dirname "$0")/train_supernet.sh" \
    --train-upper-constraints ${UPPER:-flops-330-params-5.0} \
    --train-bottom-constraints ${BOTTOM:-flops-190-params-2.8} \
    --train-constraint-method ${CONSTRAINT_METHOD:-evolution} "$@"
