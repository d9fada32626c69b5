"""The step cache's store: a content-addressed store of step results, local or shared.

blobs (content hashes), entries (what is stored), stores (a folder or an fsspec URL),
settings (which steps are cached) and commands (`uet cache`). It sits below run/ and knows
nothing of a run: keys, lookup and the StepExtension are in run/step_cache/, `uet why` in
observe/why.py.
"""
