from setuptools import setup

setup(name="legacy", install_requires=["six"])
