// The thin Python layer over the C++ core: allocates numpy outputs, releases the GIL
// while parsing, and turns cf::FormatError into chromaformer.FormatError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "binparse.hpp"
#include "depthbin.hpp"

namespace py = pybind11;

namespace {

cf::Layout make_layout(int64_t bins, int64_t marks, bool integer_counts,
                       std::vector<std::string> mark_names) {
  // Bounds that keep every size computed from them far from overflow.
  constexpr int64_t kMax = int64_t{1} << 31;
  if (bins > kMax) throw py::value_error("bins: expected at most 2^31 per gene");
  if (marks > kMax) throw py::value_error("marks: expected at most 2^31");
  cf::Layout layout;
  layout.bins = bins;
  layout.marks = marks;
  layout.integer_counts = integer_counts;
  layout.mark_names = std::move(mark_names);
  return layout;
}

// Text from a file for a message: UTF-8, any bad byte shown as U+FFFD (a message must
// never fail to be made).
py::str lenient(const std::string& s) {
  return py::reinterpret_steal<py::str>(
      PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace"));
}

py::list to_list(const std::vector<std::string>& ids) {
  py::list out(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) out[i] = py::str(ids[i]);
  return out;
}

template <class P>
py::tuple parse_into_numpy(P& parser, int64_t genes) {
  py::array_t<float> counts({genes, parser.bins(), parser.marks()});
  py::array_t<uint8_t> labels(genes);
  std::vector<std::string> ids;
  float* c = counts.mutable_data();
  uint8_t* l = labels.mutable_data();
  {
    py::gil_scoped_release release;
    parser.parse(c, l, ids);
  }
  return py::make_tuple(counts, labels, to_list(ids));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "chromaformer C++ core: strict multi-threaded bin-CSV parser";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const cf::FormatError& e) {
      py::object cls = py::module_::import("chromaformer.errors").attr("FormatError");
      py::object line = e.line > 0 ? py::object(py::int_(e.line)) : py::object(py::none());
      py::object col = e.column > 0 ? py::object(py::int_(e.column)) : py::object(py::none());
      py::object err = cls(lenient(e.what()), lenient(e.path), line, col, lenient(e.reason));
      PyErr_SetObject(cls.ptr(), err.ptr());
    }
  });

  m.def(
      "_set_sizes",
      [](size_t min_chunk, size_t block, size_t read, size_t inflate_floor) {
        cf::sizes() = cf::Sizes{std::max<size_t>(1, min_chunk), std::max<size_t>(1, block),
                                std::max<size_t>(1, read), inflate_floor};
      },
      py::arg("min_chunk") = size_t{1} << 20, py::arg("block") = size_t{4} << 20,
      py::arg("read") = size_t{1} << 20, py::arg("inflate_floor") = size_t{64} << 20,
      "Testing knob: the readers' chunk, block and read sizes and the gzip inflation floor "
      "in bytes (defaults restore).");
  m.def(
      "read_bins",
      [](const std::string& path, int threads, int64_t bins, int64_t marks, bool integer_counts,
         std::vector<std::string> mark_names) {
        std::unique_ptr<cf::FileParser> parser;
        {
          py::gil_scoped_release release;
          parser = std::make_unique<cf::FileParser>(
              path, make_layout(bins, marks, integer_counts, std::move(mark_names)), threads);
        }
        return parse_into_numpy(*parser, parser->genes());
      },
      py::arg("path"), py::arg("threads") = 0, py::arg("bins") = 0, py::arg("marks") = 0,
      py::arg("integer_counts") = true, py::arg("mark_names") = std::vector<std::string>{},
      "Parse a whole bin CSV (plain or gzip). Returns (counts, labels, gene_ids).");

  py::class_<cf::BatchReader>(m, "BatchReader")
      .def(py::init([](const std::string& path, int64_t genes_per_batch, int threads,
                       int64_t bins, int64_t marks, bool integer_counts,
                       std::vector<std::string> mark_names) {
             return std::make_unique<cf::BatchReader>(
                 path, make_layout(bins, marks, integer_counts, std::move(mark_names)),
                 genes_per_batch, threads);
           }),
           py::arg("path"), py::arg("genes_per_batch"), py::arg("threads") = 0,
           py::arg("bins") = 0, py::arg("marks") = 0, py::arg("integer_counts") = true,
           py::arg("mark_names") = std::vector<std::string>{})
      .def(
          "next",
          [](cf::BatchReader& r) -> py::object {
            int64_t genes;
            {
              py::gil_scoped_release release;
              genes = r.prepare();
            }
            if (genes == 0) return py::none();
            return parse_into_numpy(r, genes);
          },
          "Next batch as (counts, labels, gene_ids), or None at the end of the file.")
      .def_property_readonly("bins", &cf::BatchReader::bins)
      .def_property_readonly("marks", &cf::BatchReader::marks)
      .def_property_readonly("bytes_read", &cf::BatchReader::bytes_read);

  m.def(
      "format_rows",
      [](py::array_t<float, py::array::c_style | py::array::forcecast> counts,
         py::array_t<uint8_t, py::array::c_style | py::array::forcecast> labels,
         std::vector<std::string> gene_ids) {
        if (counts.ndim() != 3) throw py::value_error("counts must be (genes, bins, marks)");
        const int64_t genes = counts.shape(0), bins = counts.shape(1), marks = counts.shape(2);
        if (labels.ndim() != 1 || labels.shape(0) != genes ||
            static_cast<int64_t>(gene_ids.size()) != genes)
          throw py::value_error("labels and gene_ids must have one entry per gene");
        std::string out;
        {
          py::gil_scoped_release release;
          out = cf::format_rows(counts.data(), labels.data(), gene_ids, bins, marks);
        }
        return py::bytes(out);
      },
      py::arg("counts"), py::arg("labels"), py::arg("gene_ids"),
      "Format (genes, bins, marks) counts as bin-CSV bytes.");

  m.def(
      "bin_depth",
      [](py::array depth, std::vector<int64_t> bin_sizes) {
        if (depth.ndim() != 2) throw py::value_error("depth must be (channels, length)");
        const bool is_half = depth.dtype().kind() == 'f' && depth.dtype().itemsize() == 2;
        py::array src = is_half ? py::array(depth)
                                : py::array_t<float, py::array::c_style | py::array::forcecast>(depth);
        if (is_half && !(src.flags() & py::array::c_style))
          src = py::array(py::module_::import("numpy").attr("ascontiguousarray")(src));
        const int64_t channels = src.shape(0), length = src.shape(1);
        py::list out;
        for (int64_t bin : bin_sizes) {
          if (bin <= 0) throw py::value_error("bin sizes must be positive");
          const int64_t n = length > 0 ? (length + bin - 1) / bin : 0;
          py::array_t<float> binned({channels, n});
          float* o = binned.mutable_data();
          const void* data = src.data();
          {
            py::gil_scoped_release release;
            if (is_half)
              cf::bin_log_mean(static_cast<const uint16_t*>(data), nullptr, channels, length, bin, o);
            else
              cf::bin_log_mean(nullptr, static_cast<const float*>(data), channels, length, bin, o);
          }
          out.append(binned);
        }
        return out;
      },
      py::arg("depth"), py::arg("bin_sizes"),
      "log(mean + 1) of per-base depth (channels, length; float16 or float32) over bins of "
      "each size: a list of float32 (channels, ceil(length / size)) arrays.");

  m.def("default_threads", &cf::default_threads, "Cores this process may run on.");
}
