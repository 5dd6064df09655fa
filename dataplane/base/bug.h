/* BUG_ON(cond): a broken invariant, checked only in strict builds.
 *
 * With -Dstrict=true (PARLEY_STRICT), a true <cond> prints "BUG at
 * FILE:LINE: cond" on stderr and aborts. Otherwise it compiles to nothing:
 * <cond> is not evaluated, so it must have no side effects. For invariants
 * the code relies on, never for input a peer or an operator controls (count
 * or refuse that instead). */
#ifndef PARLEY_BUG_H
#define PARLEY_BUG_H

/* Prints where and what, then abort(). Any thread. */
void bug_fail(const char *file, int line, const char *cond)
	__attribute__((noreturn, cold));

#if defined(PARLEY_STRICT)
#define BUG_ON(cond) do {						\
	if (__builtin_expect(!!(cond), 0))				\
		bug_fail(__FILE__, __LINE__, #cond);			\
} while (0)
#else
#define BUG_ON(cond) do { (void)sizeof(!(cond)); } while (0)
#endif

#endif
