"""Drafting a bundle with an AI tool (`uet convert --with TOOL`): the prompt and its
answer, what a draft may add, the guard around each call, each call as a one-step run."""
