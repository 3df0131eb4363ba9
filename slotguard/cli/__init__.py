"""The command line (`python main.py COMMAND`)."""
