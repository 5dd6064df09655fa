#ifndef PARLEY_TEST_BUG_OFF_H
#define PARLEY_TEST_BUG_OFF_H

/* Runs a BUG_ON whose condition is true and increments *<evaluated>, in a
 * file built without PARLEY_STRICT. Returns 0 (it did not abort). */
int bug_off_check(int *evaluated);

#endif
