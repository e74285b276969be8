"""Jobs: one module per thing the program does, wiring the core and the adapters. They
return data and print nothing; the CLI and the web app call them.
"""
