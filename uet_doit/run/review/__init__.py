"""Reviewer models: criteria and a step's change judged before it lands."""
