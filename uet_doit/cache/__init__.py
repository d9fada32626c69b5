"""The step cache: a content-addressed store of step results, local or shared.

keys (what a key is made of), settings (which steps are cached), blobs and entries (what is
stored), stores (a folder or an fsspec URL), lookup (keys where a run stands), extension
(the StepExtension a run registers), why and commands (`uet why`, `uet cache`).
"""
