"""Command-line options shared by run.py and the reference runner, so both tools get the
same slide, epochs, threads and seed."""
import argparse


def add_slide_args(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    ap.add_argument("--slide", required=True)
    ap.add_argument("--truth", default="ground_truth")
    ap.add_argument("--n-clusters", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=41)
    return ap
