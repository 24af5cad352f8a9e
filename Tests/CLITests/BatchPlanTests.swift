import TestSupport
import Engine
@testable import DefacerCLI
import Foundation
import Testing

/// How `defacer batch` reads its sources, without defacing: BIDS names, which images are
/// defaced, DICOM folders, `@LIST` files and outputs that would collide.
@Suite("defacer batch planning")
struct BatchPlanTests {
    let settings = BatchSettings(mode: "fast", keepEars: false, marginMM: 4, models: "/models", dcm2niix: "dcm2niix")

    @Test("BIDS: face-showing anat images only, derivative names keep every entity and pass mod- in BIDS order")
    func bidsNames() {
        #expect(BidsLayout.faceSuffix(of: "sub-01/anat/sub-01_T2w.nii.gz") == "T2w")
        #expect(BidsLayout.faceSuffix(of: "sub-01/ses-a/anat/sub-01_ses-a_FLAIR.nii") == "FLAIR")
        #expect(BidsLayout.faceSuffix(of: "sub-01/func/sub-01_task-rest_bold.nii.gz") == nil)
        #expect(BidsLayout.faceSuffix(of: "sub-01/fmap/sub-01_magnitude1.nii.gz") == nil)
        #expect(BidsLayout.faceSuffix(of: "sub-01/anat/sub-01_T1w.json") == nil)
        #expect(BidsLayout.faceSuffix(of: "sub-01/anat/sub-01_inv-1_MP2RAGE.nii.gz") == "MP2RAGE", "fail closed")
        #expect(BidsLayout.faceSuffix(of: "sub-01/anat/sub-01_mod-T1w_defacemask.nii.gz") == nil)
        #expect(BidsLayout.faceSuffix(of: "derivatives/x/sub-01/anat/sub-01_T1w.nii.gz") == nil)
        let outputs = BidsLayout.outputs(relative: "sub-01/ses-1/anat/sub-01_ses-1_acq-mp_run-2_echo-1_T1w.nii.gz",
                                         suffix: "T1w", root: "ds")
        #expect(outputs["defaced"] == "ds/sub-01/ses-1/anat/sub-01_ses-1_acq-mp_run-2_echo-1_T1w.nii.gz")
        #expect(outputs["faceMask"]
                == "ds/derivatives/defacer/sub-01/ses-1/anat/sub-01_ses-1_acq-mp_run-2_mod-T1w_echo-1_defacemask.nii.gz")
        #expect(outputs["report"]?.hasSuffix("_mod-T1w_echo-1_defacemask.json") == true)
    }

    @Test("a DICOM folder is one item; a plain folder mirrors into DIR; @LIST paths are relative to the list")
    func foldersAndLists() throws {
        let fixture = try BatchFixture("plan")
        let planner = BatchPlanner(settings: settings)
        let dicom = try planner.plan([DefacerProcess.repositoryRoot + "/data/dicom/single"])
        #expect(dicom.items.map(\.kind) == [.dicom])
        #expect(dicom.items.first?.outputs["folder"] == "single_defaced")

        let folder = try planner.plan([fixture.scans])
        #expect(folder.items.map(\.display).sorted() == ["site1/notes_defaced.nii.gz", "site1/t1_defaced.nii.gz"])

        try fixture.write("list.txt", "# two sources\nscans/site1/t1.nii.gz\nbids\n")
        let listed = try BatchPlanner(settings: settings, workingFolder: "/").plan(["@" + fixture.path("list.txt")])
        #expect(listed.items.map(\.display).sorted() == [
            "bids/sub-01/anat/sub-01_T1w.nii.gz", "bids/sub-02/ses-1/anat/sub-02_ses-1_T1w.nii.gz", "t1_defaced.nii.gz",
        ])
        #expect(listed.copies.contains { $0.to == "bids/sub-02/ses-1/func/sub-02_ses-1_task-rest_bold.nii.gz" })
        #expect(!listed.copies.contains { $0.to.contains("sourcedata") })
    }

    @Test("two inputs that would land on the same output are refused before anything runs")
    func collisions() throws {
        let fixture = try BatchFixture("collide")
        try fixture.copy(fixture.path("scans/site1/t1.nii.gz"), to: "other/t1.nii.gz")
        #expect {
            try BatchPlanner(settings: settings).plan([fixture.path("scans/site1/t1.nii.gz"), fixture.path("other/t1.nii.gz")])
        } throws: { error in
            (error as? BatchError)?.message.contains("would both be written to t1_defaced.nii.gz") == true
        }
    }
}
