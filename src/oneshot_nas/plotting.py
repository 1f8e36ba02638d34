"""The one place that sets up matplotlib (headless) and writes figures."""
import logging

__all__ = ["pyplot", "save_figure"]

logger = logging.getLogger(__name__)


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, dpi=120):
    """Lay out, write and close ``fig``; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    logger.info("wrote %s", path)
    return path
