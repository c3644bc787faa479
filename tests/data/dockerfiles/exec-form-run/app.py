import click

print(click.__version__)
