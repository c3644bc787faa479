import click


@click.command()
def main() -> None:
    click.echo("working")


if __name__ == "__main__":
    main()
