"""Reading CLI output in tests: rich draws panel borders and wraps lines; assertions want the words."""

import re


def flat(output: str) -> str:
    """``output`` as one line of words, without rich's box characters and line breaks."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())
