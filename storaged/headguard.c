/*
 * headguard.c - see headguard.h.
 */

#include "headguard.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct headguard_entry {
    headguard_entry_t *prev, *next;
    int                fd;
    unsigned long long opened_ms;
    atomic_bool        done;
    bool               shut;
};

struct headguard {
    pthread_mutex_t    lock;
    pthread_cond_t     wake;
    pthread_t          thread;
    bool               stopping;
    unsigned           timeout_ms;
    headguard_entry_t *head;
    atomic_ulong       shut_count;
};

static unsigned long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long) ts.tv_sec * 1000ULL
           + (unsigned long long) ts.tv_nsec / 1000000ULL;
}

static void *
headguard_main(void *arg)
{
    headguard_t        *g = arg;
    headguard_entry_t  *e;
    unsigned long long  now;
    unsigned            step;
    struct timespec     until;

    /* check four times per timeout, at most every second, at least every
     * 50 ms: a connection is shut down at most a quarter late */
    step = g->timeout_ms / 4;
    step = step > 1000 ? 1000 : step < 50 ? 50 : step;

    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        now = now_ms();
        for (e = g->head; e != NULL; e = e->next) {
            if (!e->shut && !atomic_load(&e->done)
                && now - e->opened_ms >= g->timeout_ms)
            {
                shutdown(e->fd, SHUT_RDWR);
                e->shut = true;
                atomic_fetch_add(&g->shut_count, 1);
            }
        }
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long) step * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&g->wake, &g->lock, &until);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

headguard_t *
headguard_start(unsigned timeout_ms)
{
    headguard_t *g;
    int          rc;

    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        fprintf(stderr, "storaged: out of memory\n");
        return NULL;
    }
    g->timeout_ms = timeout_ms;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->wake, NULL);
    rc = pthread_create(&g->thread, NULL, headguard_main, g);
    if (rc != 0) {
        fprintf(stderr, "storaged: cannot start a thread: %s\n",
                strerror(rc));
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
    }
    return g;
}

headguard_entry_t *
headguard_open(headguard_t *g, int fd)
{
    headguard_entry_t *e;

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    e->fd = fd;
    e->opened_ms = now_ms();
    atomic_init(&e->done, false);
    pthread_mutex_lock(&g->lock);
    e->next = g->head;
    if (g->head != NULL) {
        g->head->prev = e;
    }
    g->head = e;
    pthread_mutex_unlock(&g->lock);
    return e;
}

void
headguard_done(headguard_entry_t *e)
{
    if (e != NULL && !atomic_load_explicit(&e->done, memory_order_relaxed)) {
        atomic_store(&e->done, true);
    }
}

void
headguard_close(headguard_t *g, headguard_entry_t *e)
{
    if (e == NULL) {
        return;
    }
    pthread_mutex_lock(&g->lock);
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        g->head = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    }
    pthread_mutex_unlock(&g->lock);
    free(e);
}

unsigned long
headguard_shut_count(headguard_t *g)
{
    return atomic_load(&g->shut_count);
}

void
headguard_stop(headguard_t *g)
{
    headguard_entry_t *e, *next;

    if (g == NULL) {
        return;
    }
    pthread_mutex_lock(&g->lock);
    g->stopping = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    for (e = g->head; e != NULL; e = next) {
        next = e->next;
        free(e);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}
