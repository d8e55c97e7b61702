/* otel_tele._speedups: the hot loops of the event path in C (optional).
 *
 * Why: a solver recording a million iterations pays, per row, a Python call into the recorder, a
 * pass per column to turn the queued dicts into columns, and a conversion of each column to Arrow.
 * In Python those cost ~2 us a row, as much as the whole of the simple writer a user would
 * otherwise write. Every function here has a pure-Python twin (see otel_tele/_accel.py) that gives
 * the same results; the package works without this module (it is built when a compiler is there).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <structmember.h>

/* ---- gather ---------------------------------------------------------------------------------- */

PyDoc_STRVAR(gather_doc,
"gather(rows, keys) -> (columns, kinds, nones, absents, total)\n\n"
"rows: a list of dicts; keys: a tuple of str. columns[i] is the list of rows' values under keys[i]\n"
"(None where a row lacks the key); kinds[i] the one type of its values other than None, None when\n"
"there is none, False when they are of several types; nones[i] / absents[i] how many values are\n"
"None / missing; total the number of keys in all rows together.");

static PyObject *
gather(PyObject *module, PyObject *args)
{
    PyObject *rows_arg, *keys;
    if (!PyArg_ParseTuple(args, "O!O!:gather", &PyList_Type, &rows_arg, &PyTuple_Type, &keys))
        return NULL;
    Py_ssize_t nkeys = PyTuple_GET_SIZE(keys);
    for (Py_ssize_t j = 0; j < nkeys; j++) {
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(keys, j))) {
            PyErr_SetString(PyExc_TypeError, "gather: keys must be str");
            return NULL;
        }
    }
    /* A snapshot: a key's __eq__ run by a lookup cannot change what we walk. */
    PyObject *rows = PyList_AsTuple(rows_arg);
    if (rows == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(rows);
    PyObject *columns = PyList_New(nkeys), *kinds = PyList_New(nkeys);
    PyObject *nones = PyList_New(nkeys), *absents = PyList_New(nkeys);
    PyTypeObject **first = PyMem_Calloc(nkeys ? nkeys : 1, sizeof(PyTypeObject *));
    char *mixed = PyMem_Calloc(nkeys ? nkeys : 1, 1);
    Py_ssize_t *none_count = PyMem_Calloc(nkeys ? nkeys : 1, sizeof(Py_ssize_t));
    Py_ssize_t *absent_count = PyMem_Calloc(nkeys ? nkeys : 1, sizeof(Py_ssize_t));
    PyObject *result = NULL;
    Py_ssize_t total = 0;
    if (!columns || !kinds || !nones || !absents || !first || !mixed || !none_count || !absent_count) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < nkeys; j++) {
        PyObject *column = PyList_New(n);
        if (column == NULL)
            goto done;
        for (Py_ssize_t i = 0; i < n; i++) {  /* a column is valid whatever fails below */
            Py_INCREF(Py_None);
            PyList_SET_ITEM(column, i, Py_None);
        }
        PyList_SET_ITEM(columns, j, column);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyTuple_GET_ITEM(rows, i);
        if (!PyDict_CheckExact(row)) {
            PyErr_Format(PyExc_TypeError, "gather: row %zd is not a dict", i);
            goto done;
        }
        total += PyDict_GET_SIZE(row);
        for (Py_ssize_t j = 0; j < nkeys; j++) {
            PyObject *value = PyDict_GetItemWithError(row, PyTuple_GET_ITEM(keys, j));
            if (value == NULL) {
                if (PyErr_Occurred())
                    goto done;
                absent_count[j]++;
                continue;
            }
            if (value == Py_None) {
                none_count[j]++;
                continue;
            }
            PyTypeObject *type = Py_TYPE(value);
            if (first[j] == NULL)
                first[j] = type;
            else if (first[j] != type)
                mixed[j] = 1;
            PyObject *column = PyList_GET_ITEM(columns, j);
            Py_INCREF(value);
            Py_SETREF(((PyListObject *)column)->ob_item[i], value);
        }
    }
    for (Py_ssize_t j = 0; j < nkeys; j++) {
        PyObject *kind = mixed[j] ? Py_False : first[j] ? (PyObject *)first[j] : Py_None;
        Py_INCREF(kind);
        PyList_SET_ITEM(kinds, j, kind);
        PyObject *count = PyLong_FromSsize_t(none_count[j]);
        if (count == NULL)
            goto done;
        PyList_SET_ITEM(nones, j, count);
        count = PyLong_FromSsize_t(absent_count[j]);
        if (count == NULL)
            goto done;
        PyList_SET_ITEM(absents, j, count);
    }
    result = Py_BuildValue("(OOOOn)", columns, kinds, nones, absents, total);
done:
    Py_DECREF(rows);
    Py_XDECREF(columns);
    Py_XDECREF(kinds);
    Py_XDECREF(nones);
    Py_XDECREF(absents);
    PyMem_Free(first);
    PyMem_Free(mixed);
    PyMem_Free(none_count);
    PyMem_Free(absent_count);
    return result;
}

/* ---- untrack_plain --------------------------------------------------------------------------- */

PyDoc_STRVAR(untrack_plain_doc,
"untrack_plain(d) -> bool\n\n"
"Stop the garbage collector tracking the dict d when no key or value of it is a tracked object:\n"
"then d cannot be part of a reference cycle (an untracked container holds no tracked one), and\n"
"every full collection would walk it for nothing. CPython keeps such a dict tracked whenever it\n"
"holds a dict (an event's JSON attribute), even one it does not track. Inserting a tracked\n"
"object later tracks d again (CPython does that on insertion). Returns whether d was untracked.");

static PyObject *
untrack_plain(PyObject *module, PyObject *d)
{
    if (!PyDict_CheckExact(d) || !PyObject_GC_IsTracked(d))
        Py_RETURN_FALSE;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(d, &pos, &key, &value)) {
        if ((PyObject_IS_GC(key) && PyObject_GC_IsTracked(key)) ||
            (PyObject_IS_GC(value) && PyObject_GC_IsTracked(value)))
            Py_RETURN_FALSE;
    }
    PyObject_GC_UnTrack(d);
    Py_RETURN_TRUE;
}

/* ---- Arrow buffers --------------------------------------------------------------------------- */

/* A validity bitmap (Arrow: bit i of byte i/8, least significant first) for a column with nulls,
 * filled as values are written; a bytes object, or NULL on failure. */
static PyObject *
new_bitmap(Py_ssize_t n)
{
    PyObject *bitmap = PyBytes_FromStringAndSize(NULL, (n + 7) / 8);
    if (bitmap != NULL)
        memset(PyBytes_AS_STRING(bitmap), 0, (n + 7) / 8);
    return bitmap;
}

static inline void
set_valid(PyObject *bitmap, Py_ssize_t i)
{
    ((uint8_t *)PyBytes_AS_STRING(bitmap))[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* (validity or None, data, null_count) as a tuple; steals the references. */
static PyObject *
buffers_result(PyObject *bitmap, Py_ssize_t nulls, PyObject *offsets, PyObject *data)
{
    PyObject *result;
    if (bitmap == NULL) {
        Py_INCREF(Py_None);
        bitmap = Py_None;
    }
    if (offsets != NULL)
        result = Py_BuildValue("(NNNn)", bitmap, offsets, data, nulls);
    else
        result = Py_BuildValue("(NNn)", bitmap, data, nulls);
    return result;
}

static Py_ssize_t
count_nones(PyObject *column)
{
    Py_ssize_t nulls = 0, n = PyList_GET_SIZE(column);
    for (Py_ssize_t i = 0; i < n; i++)
        nulls += PyList_GET_ITEM(column, i) == Py_None;
    return nulls;
}

/* One 8-byte value of a fixed-width column into out (a double or an int64, floor-divided by
 * divisor); 0 on success, -1 with an exception set. */
static int
put_fixed(PyObject *value, Py_ssize_t i, int is_float, long long divisor, char *out)
{
    if (is_float) {
        if (!PyFloat_CheckExact(value)) {
            PyErr_Format(PyExc_TypeError, "float64_buffers: value %zd is a %.100s", i, Py_TYPE(value)->tp_name);
            return -1;
        }
        double x = PyFloat_AS_DOUBLE(value);
        memcpy(out, &x, sizeof x);
        return 0;
    }
    if (!PyLong_CheckExact(value)) {
        PyErr_Format(PyExc_TypeError, "int64_buffers: value %zd is a %.100s", i, Py_TYPE(value)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow) {
        PyErr_Format(PyExc_OverflowError, "int64_buffers: value %zd does not fit in 64 bits", i);
        return -1;
    }
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (divisor != 1) {  /* floor division, as Python's // */
        long long q = x / divisor;
        if ((x % divisor != 0) && (x < 0))
            q -= 1;
        x = q;
    }
    int64_t y = (int64_t)x;
    memcpy(out, &y, sizeof y);
    return 0;
}

/* (validity, data, null_count) of a column of 8-byte values (see put_fixed). */
static PyObject *
fixed_buffers(PyObject *column, int is_float, long long divisor)
{
    Py_ssize_t n = PyList_GET_SIZE(column), nulls = count_nones(column);
    PyObject *data = PyBytes_FromStringAndSize(NULL, n * 8);
    PyObject *bitmap = nulls ? new_bitmap(n) : NULL;
    if (data == NULL || (nulls && bitmap == NULL))
        goto fail;
    char *out = PyBytes_AS_STRING(data);
    memset(out, 0, (size_t)n * 8);  /* a null's slot */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = PyList_GET_ITEM(column, i);
        if (value == Py_None)
            continue;
        if (put_fixed(value, i, is_float, divisor, out + i * 8) < 0)
            goto fail;
        if (bitmap)
            set_valid(bitmap, i);
    }
    return buffers_result(bitmap, nulls, NULL, data);
fail:
    Py_XDECREF(data);
    Py_XDECREF(bitmap);
    return NULL;
}

PyDoc_STRVAR(float64_buffers_doc,
"float64_buffers(column) -> (validity, data, null_count)\n\n"
"An Arrow double array's buffers for a list of floats (exactly float) and Nones; validity is None\n"
"when no value is None. Raises TypeError for any other value.");

static PyObject *
float64_buffers(PyObject *module, PyObject *column)
{
    if (!PyList_CheckExact(column)) {
        PyErr_SetString(PyExc_TypeError, "float64_buffers: a list expected");
        return NULL;
    }
    return fixed_buffers(column, 1, 1);
}

PyDoc_STRVAR(int64_buffers_doc,
"int64_buffers(column, divisor=1) -> (validity, data, null_count)\n\n"
"An Arrow int64 array's buffers for a list of ints (exactly int) and Nones, each floor-divided by\n"
"divisor (ns -> us: 1000). Raises TypeError for any other value, OverflowError past 64 bits.");

static PyObject *
int64_buffers(PyObject *module, PyObject *args)
{
    PyObject *column;
    long long divisor = 1;
    if (!PyArg_ParseTuple(args, "O!|L:int64_buffers", &PyList_Type, &column, &divisor))
        return NULL;
    if (divisor <= 0) {
        PyErr_SetString(PyExc_ValueError, "int64_buffers: divisor must be positive");
        return NULL;
    }
    return fixed_buffers(column, 0, divisor);
}

PyDoc_STRVAR(utf8_buffers_doc,
"utf8_buffers(column) -> (validity, offsets, data, null_count)\n\n"
"An Arrow string array's buffers (int32 offsets) for a list of strs (exactly str) and Nones.\n"
"Raises TypeError for any other value, UnicodeEncodeError for a lone surrogate, OverflowError when\n"
"the text passes 2 GiB.");

static PyObject *
utf8_buffers(PyObject *module, PyObject *column)
{
    if (!PyList_CheckExact(column)) {
        PyErr_SetString(PyExc_TypeError, "utf8_buffers: a list expected");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(column), nulls = count_nones(column);
    Py_ssize_t size = 0;
    for (Py_ssize_t i = 0; i < n; i++) {  /* first pass: types, and the text's size */
        PyObject *value = PyList_GET_ITEM(column, i);
        if (value == Py_None)
            continue;
        if (!PyUnicode_CheckExact(value)) {
            PyErr_Format(PyExc_TypeError, "utf8_buffers: value %zd is a %.100s", i, Py_TYPE(value)->tp_name);
            return NULL;
        }
        Py_ssize_t length;
        if (PyUnicode_AsUTF8AndSize(value, &length) == NULL)
            return NULL;
        size += length;
        if (size > INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "utf8_buffers: over 2 GiB of text");
            return NULL;
        }
    }
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * (Py_ssize_t)sizeof(int32_t));
    PyObject *data = PyBytes_FromStringAndSize(NULL, size);
    PyObject *bitmap = nulls ? new_bitmap(n) : NULL;
    if (offsets == NULL || data == NULL || (nulls && bitmap == NULL)) {
        Py_XDECREF(offsets);
        Py_XDECREF(data);
        Py_XDECREF(bitmap);
        return NULL;
    }
    int32_t *off = (int32_t *)PyBytes_AS_STRING(offsets);
    char *out = PyBytes_AS_STRING(data);
    int32_t at = 0;
    off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = PyList_GET_ITEM(column, i);
        if (value != Py_None) {
            Py_ssize_t length;
            const char *text = PyUnicode_AsUTF8AndSize(value, &length);  /* cached by the first pass */
            memcpy(out + at, text, (size_t)length);
            at += (int32_t)length;
            if (bitmap)
                set_valid(bitmap, i);
        }
        off[i + 1] = at;
    }
    return buffers_result(bitmap, nulls, offsets, data);
}

/* ---- RowRecorder ----------------------------------------------------------------------------- */

/* The C twin of otel_tele._event_buffer.RowRecorderPy: see its docstring for what a call does. */
typedef struct {
    PyObject_HEAD
    PyObject *rows;         /* the buffer's deque */
    PyObject *append;       /* rows.append */
    PyObject *hand_over;    /* the buffer's hand_over() */
    PyObject *context;      /* the buffer's context */
    PyObject *get_context;  /* () -> the current context */
    PyObject *check;        /* (index, fields) -> bool: a call the short path does not take */
    PyObject *clock;        /* () -> ns, monotonic */
    PyObject *offset_key, *time_key, *context_key;
    PyObject *valid_names;  /* tuple of str: the field names last found valid */
    long long start_ns, origin_ns;
    Py_ssize_t calls, fast_calls, chunk;
    char renames;           /* the valid names spell lambda_ (stored as lambda) */
    char native_clock;      /* clock is perf_counter_ns, which is clock_gettime(CLOCK_MONOTONIC) */
} RowRecorder;

static PyObject *str_lambda, *str_lambda_;

static int
recorder_traverse(RowRecorder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->rows);
    Py_VISIT(self->append);
    Py_VISIT(self->hand_over);
    Py_VISIT(self->context);
    Py_VISIT(self->get_context);
    Py_VISIT(self->check);
    Py_VISIT(self->clock);
    Py_VISIT(self->valid_names);
    return 0;
}

static int
recorder_clear(RowRecorder *self)
{
    Py_CLEAR(self->rows);
    Py_CLEAR(self->append);
    Py_CLEAR(self->hand_over);
    Py_CLEAR(self->context);
    Py_CLEAR(self->get_context);
    Py_CLEAR(self->check);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->offset_key);
    Py_CLEAR(self->time_key);
    Py_CLEAR(self->context_key);
    Py_CLEAR(self->valid_names);
    return 0;
}

static void
recorder_dealloc(RowRecorder *self)
{
    PyObject_GC_UnTrack(self);
    recorder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
recorder_init(RowRecorder *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"rows", "hand_over", "context", "get_context", "check", "clock",
                             "start_ns", "origin_ns", "fast_calls", "offset_key", "time_key",
                             "context_key", "chunk", "native_clock", NULL};
    PyObject *rows, *hand_over, *context, *get_context, *check, *clock, *offset_key, *time_key,
        *context_key;
    long long start_ns, origin_ns;
    Py_ssize_t fast_calls, chunk;
    int native_clock;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "$OOOOOOLLnUUUnp:RowRecorder", kwlist, &rows,
                                     &hand_over, &context, &get_context, &check, &clock, &start_ns,
                                     &origin_ns, &fast_calls, &offset_key, &time_key, &context_key,
                                     &chunk, &native_clock))
        return -1;
    PyObject *append = PyObject_GetAttrString(rows, "append");
    if (append == NULL)
        return -1;
    recorder_clear(self);
    self->append = append;
#define SET(field) Py_INCREF(field); self->field = field
    SET(rows); SET(hand_over); SET(context); SET(get_context); SET(check); SET(clock);
    SET(offset_key); SET(time_key); SET(context_key);
#undef SET
    self->valid_names = PyTuple_New(0);
    if (self->valid_names == NULL)
        return -1;
    self->start_ns = start_ns;
    self->origin_ns = origin_ns;
    self->fast_calls = fast_calls;
    self->chunk = chunk > 0 ? chunk : 1;
    self->calls = 0;
    self->renames = 0;
#if defined(__linux__) && defined(CLOCK_MONOTONIC)
    self->native_clock = (char)native_clock;
#else
    self->native_clock = 0;
#endif
    return 0;
}

/* Whether fields (a dict) holds exactly the valid names, in order, and no value that is None. */
static int
short_path(RowRecorder *self, PyObject *fields)
{
    PyObject *names = self->valid_names;
    Py_ssize_t count = PyTuple_GET_SIZE(names);
    if (PyDict_GET_SIZE(fields) != count)
        return 0;
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    while (PyDict_Next(fields, &pos, &key, &value)) {
        PyObject *name = PyTuple_GET_ITEM(names, i++);
        if (key != name) {
            if (!PyUnicode_CheckExact(key) || !PyUnicode_CheckExact(name) ||
                PyUnicode_Compare(key, name) != 0) {
                PyErr_Clear();
                return 0;
            }
        }
        if (value == Py_None)
            return 0;
    }
    return 1;
}

static long long
monotonic_ns(void)
{
#if defined(__linux__) && defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
#else
    return 0;
#endif
}

static PyObject *
recorder_record(RowRecorder *self, PyObject *args, PyObject *kwargs)
{
    if (args != NULL && PyTuple_GET_SIZE(args) != 0) {
        PyErr_Format(PyExc_TypeError, "iteration() takes 0 positional arguments but %zd were given",
                     PyTuple_GET_SIZE(args));
        return NULL;
    }
    if (self->rows == NULL) {
        PyErr_SetString(PyExc_ValueError, "RowRecorder: not initialised");
        return NULL;
    }
    /* The dict is ours to keep only when nobody else holds it (the interpreter's fresh kwargs). */
    PyObject *fields;
    if (kwargs == NULL)
        fields = PyDict_New();
    else if (Py_REFCNT(kwargs) == 1 && PyDict_CheckExact(kwargs)) {
        Py_INCREF(kwargs);
        fields = kwargs;
    }
    else
        fields = PyDict_Copy(kwargs);
    if (fields == NULL)
        return NULL;
    PyObject *result = NULL, *number = NULL, *context = NULL;
    Py_ssize_t index = self->calls++;
    if (index < self->fast_calls && short_path(self, fields)) {
        if (self->renames) {
            PyObject *value = PyDict_GetItemWithError(fields, str_lambda_);
            if (value != NULL) {
                Py_INCREF(value);
                int failed = PyDict_DelItem(fields, str_lambda_) < 0 ||
                             PyDict_SetItem(fields, str_lambda, value) < 0;
                Py_DECREF(value);
                if (failed)
                    goto done;
            }
            else if (PyErr_Occurred())
                goto done;
        }
    }
    else {
        PyObject *verdict = PyObject_CallFunction(self->check, "nO", index, fields);
        if (verdict == NULL)
            goto done;
        int take = PyObject_IsTrue(verdict);
        Py_DECREF(verdict);
        if (take < 0)
            goto done;
        if (!take) {
            Py_INCREF(Py_None);
            result = Py_None;
            goto done;
        }
    }
    long long now;
    if (self->native_clock)
        now = monotonic_ns();
    else {
        PyObject *clock = PyObject_CallNoArgs(self->clock);
        if (clock == NULL)
            goto done;
        now = PyLong_AsLongLong(clock);
        Py_DECREF(clock);
        if (now == -1 && PyErr_Occurred())
            goto done;
    }
    long long offset = now - self->start_ns;
    number = PyFloat_FromDouble((double)offset / 1e6);
    if (number == NULL || PyDict_SetItem(fields, self->offset_key, number) < 0)
        goto done;
    Py_DECREF(number);
    number = PyLong_FromLongLong(self->origin_ns + offset);
    if (number == NULL || PyDict_SetItem(fields, self->time_key, number) < 0)
        goto done;
    context = PyObject_CallNoArgs(self->get_context);
    if (context == NULL)
        goto done;
    if (context != self->context && PyDict_SetItem(fields, self->context_key, context) < 0)
        goto done;
    PyObject *appended = PyObject_CallOneArg(self->append, fields);
    if (appended == NULL)
        goto done;
    Py_DECREF(appended);
    Py_ssize_t held = PyObject_Size(self->rows);
    if (held < 0)
        goto done;
    if (held >= self->chunk) {
        PyObject *handed = PyObject_CallNoArgs(self->hand_over);
        if (handed == NULL)
            goto done;
        Py_DECREF(handed);
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    Py_XDECREF(number);
    Py_XDECREF(context);
    Py_DECREF(fields);
    return result;
}

static PyObject *
recorder_call(RowRecorder *self, PyObject *args, PyObject *kwargs)
{
    return recorder_record(self, args, kwargs);
}

static PyObject *
recorder_get_valid_names(RowRecorder *self, void *closure)
{
    Py_INCREF(self->valid_names);
    return self->valid_names;
}

static int
recorder_set_valid_names(RowRecorder *self, PyObject *value, void *closure)
{
    if (value == NULL || !PyTuple_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "valid_names must be a tuple");
        return -1;
    }
    Py_INCREF(value);
    Py_SETREF(self->valid_names, value);
    return 0;
}

static PyObject *
recorder_get_renames(RowRecorder *self, void *closure)
{
    return PyBool_FromLong(self->renames);
}

static int
recorder_set_renames(RowRecorder *self, PyObject *value, void *closure)
{
    int truth = value == NULL ? 0 : PyObject_IsTrue(value);
    if (truth < 0)
        return -1;
    self->renames = (char)truth;
    return 0;
}

static PyObject *
recorder_get_context(RowRecorder *self, void *closure)
{
    PyObject *context = self->context ? self->context : Py_None;
    Py_INCREF(context);
    return context;
}

static int
recorder_set_context(RowRecorder *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "context cannot be deleted");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(self->context, value);
    return 0;
}

static PyGetSetDef recorder_getset[] = {
    {"context", (getter)recorder_get_context, (setter)recorder_set_context,
     "The buffer's context: a row recorded in another gets its own.", NULL},
    {"valid_names", (getter)recorder_get_valid_names, (setter)recorder_set_valid_names,
     "The field names last found valid, in call order (the short path takes only those).", NULL},
    {"renames", (getter)recorder_get_renames, (setter)recorder_set_renames,
     "Whether the valid names spell lambda_ (stored as lambda).", NULL},
    {NULL},
};

static PyMemberDef recorder_members[] = {
    {"calls", T_PYSSIZET, offsetof(RowRecorder, calls), 0, "Calls so far."},
    {"fast_calls", T_PYSSIZET, offsetof(RowRecorder, fast_calls), 0,
     "Calls before this index may take the short path."},
    {NULL},
};

static PyMethodDef recorder_methods[] = {
    {"record", (PyCFunction)(void (*)(void))recorder_record, METH_VARARGS | METH_KEYWORDS,
     "record(**fields): one row (see RowRecorderPy.record)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RowRecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "otel_tele._speedups.RowRecorder",
    .tp_basicsize = sizeof(RowRecorder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The C twin of otel_tele._event_buffer.RowRecorderPy.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)recorder_init,
    .tp_dealloc = (destructor)recorder_dealloc,
    .tp_traverse = (traverseproc)recorder_traverse,
    .tp_clear = (inquiry)recorder_clear,
    .tp_call = (ternaryfunc)recorder_call,
    .tp_methods = recorder_methods,
    .tp_members = recorder_members,
    .tp_getset = recorder_getset,
};

/* ---- module ---------------------------------------------------------------------------------- */

static PyMethodDef methods[] = {
    {"gather", gather, METH_VARARGS, gather_doc},
    {"untrack_plain", untrack_plain, METH_O, untrack_plain_doc},
    {"float64_buffers", float64_buffers, METH_O, float64_buffers_doc},
    {"int64_buffers", int64_buffers, METH_VARARGS, int64_buffers_doc},
    {"utf8_buffers", utf8_buffers, METH_O, utf8_buffers_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "otel_tele._speedups",
    "The event path's hot loops in C; see otel_tele._accel for their pure-Python twins.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    str_lambda = PyUnicode_InternFromString("lambda");
    str_lambda_ = PyUnicode_InternFromString("lambda_");
    if (str_lambda == NULL || str_lambda_ == NULL || PyType_Ready(&RowRecorderType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    Py_INCREF(&RowRecorderType);
    if (PyModule_AddObject(module, "RowRecorder", (PyObject *)&RowRecorderType) < 0) {
        Py_DECREF(&RowRecorderType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
