from nasbench_pc.cli import main

if __name__ == "__main__":
    main()
