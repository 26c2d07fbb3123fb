from shopfleet.cli import main

main()
