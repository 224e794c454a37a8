from initstudy.run.cli import console

if __name__ == "__main__":  # a spawned worker (initstudy.run.parallel) imports this module too
    console()
