"""The theory track: the building blocks written from scratch and checked against libraries.

Its labs are the pages in labs/theory/; `python -m <package> theory --help` lists its commands.
"""
