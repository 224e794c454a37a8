from initstudy.cli import console

if __name__ == "__main__":  # a spawned worker (initstudy.parallel) imports this module too
    console()
