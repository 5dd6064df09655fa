/* Placeholder: being written (XCCOS codec). */
