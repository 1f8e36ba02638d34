"""The error type of the deployment package."""

__all__ = ["DeployError"]


class DeployError(ValueError):
    """A problem the user can fix (wrong model, missing file, unsupported option); the CLIs
    report it in one line and exit with status 2."""
