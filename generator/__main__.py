from generator.worker import main

main()
