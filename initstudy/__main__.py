from initstudy.run.cli import console

if __name__ == "__main__":  # a spawned Dask worker (run/engine.py, off Linux) imports this module too
    console()
