from services.cli.main import run

run()
