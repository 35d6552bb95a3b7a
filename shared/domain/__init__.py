"""Domain services: plain functions taking plain values and an explicit session.

They flush; the caller (view, job, CLI) commits once. They never import Flask or Redis.
"""
