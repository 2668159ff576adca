from llm_feedback_loop.cli import main

main()
