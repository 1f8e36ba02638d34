"""Top-1 / top-5 hits and cross-entropy of a batch of class scores, counted one way for the
trainer's validation, the search evaluator and the deploy evaluation."""
import numpy as np

__all__ = ["topk_hits", "cross_entropy"]


def topk_hits(scores, labels, k=5):
    """Which images a batch of scores classifies right.

    Parameters
    ----------
    scores : numpy.ndarray
        ``(N, classes)`` logits or probabilities.
    labels : numpy.ndarray
        ``(N,)`` integer class labels.
    k : int
        The wider hit: the label among the ``k`` highest scores.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Per image: the top-1 class, whether it is the label, whether the label is in the top
        ``k``.
    """
    top = np.argsort(-scores, axis=1)[:, :k]
    return top[:, 0], top[:, 0] == labels, (top == labels[:, None]).any(axis=1)


def cross_entropy(scores, labels):
    """Per image: the softmax cross-entropy of ``(N, classes)`` logits ``scores`` against
    ``labels``, computed in float64 (stable for confident, wrong outputs)."""
    z = scores.astype(np.float64) - scores.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]
