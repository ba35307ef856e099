"""The applied track: get a model working on real data first, then measure it honestly.

Its labs are the pages in labs/applied/; `python -m <package> applied --help` lists its commands.
"""
