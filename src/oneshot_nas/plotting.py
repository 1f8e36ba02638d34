"""The one place that sets up matplotlib (headless) and writes figures."""
import logging

__all__ = ["pyplot", "label_axes", "save_figure"]

logger = logging.getLogger(__name__)


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib  # heavy: matplotlib, loaded only to draw; Agg before pyplot
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: see above
    return plt


def label_axes(ax, xlabel, ylabel, title, **legend):
    """Axis labels, title, the light grid of every figure, and a legend (``legend``: keyword
    arguments of ``ax.legend``)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(**legend)


def save_figure(fig, path, dpi=120):
    """Lay out, write and close ``fig``; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    logger.info("wrote %s", path)
    return path
