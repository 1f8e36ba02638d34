"""Command-line front ends: each module has ``main(argv) -> exit code``; the top-level scripts
are thin wrappers around them."""
