"""The systems track: measure first, then make training and inference fast, with numbers.

Its labs are the pages in labs/systems/; `python -m <package> systems --help` lists its commands.
"""
