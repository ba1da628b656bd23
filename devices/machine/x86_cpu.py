"""The x86 vCPU section ``cpu`` (target/i386/machine.c, ``vmstate_x86_cpu``), version 12.

Fields carry QEMU's names (``env.regs``), the attributes the same without
``env.``.  Subsections are the ones
QEMU 7.2 can send whose layout is fixed; their ``needed`` tests are QEMU's
where they depend on the state held here.  A subsection we do not describe
(the KVM nested state, AMX, XFD, arch LBR...) makes the description fail
with ``UnknownSubsectionError``, so the section falls back, never misreads.
"""

from __future__ import annotations

from typing import Any

import attrs

from vmstate import Subsection, field, state, struct
from vmstate.kinds import INT32, INT64, UINT8, UINT16, UINT32, UINT64, array

__all__ = ["Segment", "FpReg", "XmmReg", "ZmmHReg", "Hi16ZmmReg", "MtrrVar", "BndReg", "X86CpuState"]

#: CPU_NB_REGS on x86_64
_NB_REGS = 16
#: MCE_BANKS_DEF * 4 (target/i386/cpu.h)
_MCE_BANK_WORDS = 40
#: MAX_FIXED_COUNTERS, MAX_GP_COUNTERS (target/i386/cpu.h)
_FIXED_COUNTERS = 3
_GP_COUNTERS = 18
#: MSR_IA32_MISC_ENABLE_DEFAULT: fast strings enabled
_MISC_ENABLE_DEFAULT = 1


@state(name="segment", version=1, minimum_version=1)
class Segment:
    """``vmstate_segment``: one segment descriptor cache."""

    selector: int = field(UINT32)
    base: int = field(UINT64)
    limit: int = field(UINT32)
    flags: int = field(UINT32)


@state(name="fpreg_tmp", version=0)
class FpReg:
    """``vmstate_fpreg`` (through ``vmstate_fpreg_tmp``): an 80-bit x87 register as mantissa and exponent."""

    tmp_mant: int = field(UINT64)
    tmp_exp: int = field(UINT16)


@state(name="xmm_reg", version=1, minimum_version=1)
class XmmReg:
    """``vmstate_xmm_reg`` (bits 0-127) and ``vmstate_ymmh_reg`` (128-255): two quadwords."""

    low: int = field(UINT64)
    high: int = field(UINT64)


@state(name="zmmh_reg", version=1, minimum_version=1)
class ZmmHReg:
    """``vmstate_zmmh_reg``: bits 256-511 of ZMM0-15."""

    q: list[int] = field(array(UINT64, 4))


@state(name="hi16_zmm_reg", version=1, minimum_version=1)
class Hi16ZmmReg:
    """``vmstate_hi16_zmm_reg``: all 512 bits of ZMM16-31."""

    q: list[int] = field(array(UINT64, 8))


@state(name="mtrr_var", version=1, minimum_version=1)
class MtrrVar:
    """``vmstate_mtrr_var``: a variable-range MTRR pair."""

    base: int = field(UINT64)
    mask: int = field(UINT64)


@state(name="bnd_regs", version=1, minimum_version=1)
class BndReg:
    """``vmstate_bnd_regs``: an MPX bound register."""

    lb: int = field(UINT64)
    ub: int = field(UINT64)


def _nonzero(*names: str) -> Any:
    """QEMU's usual ``needed``: any of these fields (or list elements) differs from zero."""

    def needed(cpu: Any) -> bool:
        for name in names:
            value = getattr(cpu, name)
            if any(value) if isinstance(value, list) else value:
                return True
        return False

    needed.__qualname__ = f"nonzero({', '.join(names)})"
    return needed


def _avx512_needed(cpu: Any) -> bool:
    return any(cpu.opmask_regs) or any(any(r.q) for r in cpu.zmmh_regs) or any(any(r.q) for r in cpu.hi16_zmm_regs)


def _mpx_needed(cpu: Any) -> bool:
    return any(r.lb or r.ub for r in cpu.bnd_regs) or bool(cpu.bndcs_cfgu or cpu.bndcs_sts or cpu.msr_bndcfgs)


def _svm_npt_needed(cpu: Any) -> bool:
    return bool(cpu.hflags2 & (1 << 6))  # HF2_NPT_MASK


_SUBSECTIONS = (
    # exception_info: env->exception_pending && (hflags & HF_GUEST_MASK)
    Subsection("cpu/exception_info", 1, lambda c: bool(c.exception_pending and c.hflags & (1 << 22)), 1),
    Subsection("cpu/async_pf_msr", 1, _nonzero("async_pf_en_msr"), 1),
    Subsection("cpu/async_pv_eoi_msr", 1, _nonzero("pv_eoi_en_msr"), 1),
    Subsection("cpu/steal_time_msr", 1, _nonzero("steal_time_msr"), 1),
    # "Poll control MSR enabled by default": sent when it is not 1
    Subsection("cpu/poll_control_msr", 1, lambda c: c.poll_control_msr != 1, 1),
    Subsection("cpu/fpop_ip_dp", 1, _nonzero("fpop", "fpip", "fpdp"), 1),
    Subsection("cpu/msr_tsc_adjust", 1, _nonzero("tsc_adjust"), 1),
    Subsection("cpu/msr_tscdeadline", 1, _nonzero("tsc_deadline"), 1),
    Subsection("cpu/msr_ia32_misc_enable", 1, lambda c: c.msr_ia32_misc_enable != _MISC_ENABLE_DEFAULT, 1),
    Subsection("cpu/msr_ia32_feature_control", 1, _nonzero("msr_ia32_feature_control"), 1),
    Subsection(
        "cpu/msr_architectural_pmu", 1,
        _nonzero("msr_fixed_ctr_ctrl", "msr_global_ctrl", "msr_global_status", "msr_global_ovf_ctrl",
                 "msr_fixed_counters", "msr_gp_counters", "msr_gp_evtsel"), 1,
    ),
    Subsection("cpu/mpx", 1, _mpx_needed, 1),
    Subsection("cpu/msr_hyperv_hypercall", 1, _nonzero("msr_hv_hypercall", "msr_hv_guest_os_id"), 1),
    Subsection("cpu/msr_hyperv_vapic", 1, _nonzero("msr_hv_vapic"), 1),
    Subsection("cpu/msr_hyperv_time", 1, _nonzero("msr_hv_tsc"), 1),
    Subsection("cpu/msr_hyperv_crash", 1, _nonzero("msr_hv_crash_params"), 1),
    Subsection("cpu/msr_hyperv_runtime", 1, _nonzero("msr_hv_runtime"), 1),
    Subsection(
        "cpu/msr_hyperv_synic", 1,
        _nonzero("msr_hv_synic_control", "msr_hv_synic_evt_page", "msr_hv_synic_msg_page", "msr_hv_synic_sint"), 1,
    ),
    Subsection("cpu/msr_hyperv_stimer", 1, _nonzero("msr_hv_stimer_config", "msr_hv_stimer_count"), 1),
    Subsection(
        "cpu/msr_hyperv_reenlightenment", 1,
        _nonzero("msr_hv_reenlightenment_control", "msr_hv_tsc_emulation_control", "msr_hv_tsc_emulation_status"), 1,
    ),
    Subsection("cpu/avx512", 1, _avx512_needed, 1),
    Subsection("cpu/xss", 1, _nonzero("xss"), 1),
    Subsection("cpu/umwait", 1, _nonzero("umwait"), 1),
    # QEMU also asks the machine class (save_tsc_khz), which the stream does not carry
    Subsection("cpu/tsc_khz", 1, _nonzero("tsc_khz"), 1),
    # ... and the CPU's migrate-smi-count property
    Subsection("cpu/msr_smi_count", 1, _nonzero("msr_smi_count"), 1),
    Subsection("cpu/pkru", 1, _nonzero("pkru"), 1),
    Subsection("cpu/spec_ctrl", 1, _nonzero("spec_ctrl"), 1),
    # ... and the CPU's lmce property
    Subsection("cpu/mcg_ext_ctl", 1, _nonzero("mcg_ext_ctl"), 1),
    Subsection(
        "cpu/intel_pt", 1,
        _nonzero("msr_rtit_ctrl", "msr_rtit_status", "msr_rtit_output_base", "msr_rtit_output_mask",
                 "msr_rtit_cr3_match", "msr_rtit_addrs"), 1,
    ),
    Subsection("cpu/virt_ssbd", 1, _nonzero("virt_ssbd"), 1),
    # sic: QEMU spells it "svn"
    Subsection("cpu/svn_npt", 1, _svm_npt_needed, 1),
)


def _list(n: int, factory: Any = int) -> Any:
    return attrs.Factory(lambda: [factory() for _ in range(n)])


@state(name="cpu@x86_64", version=12, minimum_version=12, subsections=_SUBSECTIONS)
class X86CpuState:
    """QEMU's ``vmstate_x86_cpu`` of qemu-system-x86_64 at version 12 (what 7.2 writes).

    ``fpus``/``fptag`` are QEMU's ``*_vmstate`` forms (the top-of-stack in
    ``fpus`` bits 11-13, ``fptag`` one bit per empty register);
    ``fpregs_format`` must be 0 (softfloat).
    """

    regs: list[int] = field(array(UINT64, _NB_REGS), name="env.regs")
    eip: int = field(UINT64, name="env.eip")
    eflags: int = field(UINT64, name="env.eflags")
    hflags: int = field(UINT32, name="env.hflags")
    fpuc: int = field(UINT16, name="env.fpuc")
    fpus: int = field(UINT16, name="env.fpus_vmstate")
    fptag: int = field(UINT16, name="env.fptag_vmstate")
    fpregs_format: int = field(UINT16, name="env.fpregs_format_vmstate")
    fpregs: list[FpReg] = field(array(struct(FpReg), 8), default=_list(8, FpReg), name="env.fpregs")
    segs: list[Segment] = field(array(struct(Segment), 6), default=_list(6, Segment), name="env.segs")
    ldt: Segment = field(struct(Segment), name="env.ldt")
    tr: Segment = field(struct(Segment), name="env.tr")
    gdt: Segment = field(struct(Segment), name="env.gdt")
    idt: Segment = field(struct(Segment), name="env.idt")
    sysenter_cs: int = field(UINT32, name="env.sysenter_cs")
    sysenter_esp: int = field(UINT64, name="env.sysenter_esp")
    sysenter_eip: int = field(UINT64, name="env.sysenter_eip")
    cr0: int = field(UINT64, name="env.cr[0]")
    cr2: int = field(UINT64, name="env.cr[2]")
    cr3: int = field(UINT64, name="env.cr[3]")
    cr4: int = field(UINT64, name="env.cr[4]")
    dr: list[int] = field(array(UINT64, 8), name="env.dr")
    a20_mask: int = field(INT32, name="env.a20_mask")
    mxcsr: int = field(UINT32, name="env.mxcsr")
    xmm_regs: list[XmmReg] = field(array(struct(XmmReg), _NB_REGS), default=_list(_NB_REGS, XmmReg), name="env.xmm_regs[0]")
    efer: int = field(UINT64, name="env.efer")
    star: int = field(UINT64, name="env.star")
    lstar: int = field(UINT64, name="env.lstar")
    cstar: int = field(UINT64, name="env.cstar")
    fmask: int = field(UINT64, name="env.fmask")
    kernelgsbase: int = field(UINT64, name="env.kernelgsbase")
    smbase: int = field(UINT32, name="env.smbase")
    pat: int = field(UINT64, name="env.pat")
    hflags2: int = field(UINT32, name="env.hflags2")
    vm_hsave: int = field(UINT64, name="env.vm_hsave")
    vm_vmcb: int = field(UINT64, name="env.vm_vmcb")
    tsc_offset: int = field(UINT64, name="env.tsc_offset")
    intercept: int = field(UINT64, name="env.intercept")
    intercept_cr_read: int = field(UINT16, name="env.intercept_cr_read")
    intercept_cr_write: int = field(UINT16, name="env.intercept_cr_write")
    intercept_dr_read: int = field(UINT16, name="env.intercept_dr_read")
    intercept_dr_write: int = field(UINT16, name="env.intercept_dr_write")
    intercept_exceptions: int = field(UINT32, name="env.intercept_exceptions")
    v_tpr: int = field(UINT8, name="env.v_tpr")
    mtrr_fixed: list[int] = field(array(UINT64, 11), name="env.mtrr_fixed")
    mtrr_deftype: int = field(UINT64, name="env.mtrr_deftype")
    mtrr_var: list[MtrrVar] = field(array(struct(MtrrVar), 8), default=_list(8, MtrrVar), name="env.mtrr_var")
    interrupt_injected: int = field(INT32, name="env.interrupt_injected")
    mp_state: int = field(UINT32, name="env.mp_state")
    tsc: int = field(UINT64, name="env.tsc")
    exception_nr: int = field(INT32, name="env.exception_nr")
    soft_interrupt: int = field(UINT8, name="env.soft_interrupt")
    nmi_injected: int = field(UINT8, name="env.nmi_injected")
    nmi_pending: int = field(UINT8, name="env.nmi_pending")
    has_error_code: int = field(UINT8, name="env.has_error_code")
    sipi_vector: int = field(UINT32, name="env.sipi_vector")
    mcg_cap: int = field(UINT64, name="env.mcg_cap")
    mcg_status: int = field(UINT64, name="env.mcg_status")
    mcg_ctl: int = field(UINT64, name="env.mcg_ctl")
    mce_banks: list[int] = field(array(UINT64, _MCE_BANK_WORDS), name="env.mce_banks")
    tsc_aux: int = field(UINT64, name="env.tsc_aux")
    system_time_msr: int = field(UINT64, name="env.system_time_msr")
    wall_clock_msr: int = field(UINT64, name="env.wall_clock_msr")
    xcr0: int = field(UINT64, name="env.xcr0")
    xstate_bv: int = field(UINT64, name="env.xstate_bv")
    #: bits 128-255 of XMM0-15 (``VMSTATE_YMMH_REGS_VARS``)
    ymmh_regs: list[XmmReg] = field(array(struct(XmmReg), _NB_REGS), default=_list(_NB_REGS, XmmReg), name="env.xmm_regs[1]")

    exception_pending: int = field(UINT8, subsection="cpu/exception_info", name="env.exception_pending")
    exception_injected: int = field(UINT8, subsection="cpu/exception_info", name="env.exception_injected")
    exception_has_payload: int = field(UINT8, subsection="cpu/exception_info", name="env.exception_has_payload")
    exception_payload: int = field(UINT64, subsection="cpu/exception_info", name="env.exception_payload")
    async_pf_en_msr: int = field(UINT64, subsection="cpu/async_pf_msr", name="env.async_pf_en_msr")
    pv_eoi_en_msr: int = field(UINT64, subsection="cpu/async_pv_eoi_msr", name="env.pv_eoi_en_msr")
    steal_time_msr: int = field(UINT64, subsection="cpu/steal_time_msr", name="env.steal_time_msr")
    poll_control_msr: int = field(UINT64, subsection="cpu/poll_control_msr", default=1, name="env.poll_control_msr")
    fpop: int = field(UINT16, subsection="cpu/fpop_ip_dp", name="env.fpop")
    fpip: int = field(UINT64, subsection="cpu/fpop_ip_dp", name="env.fpip")
    fpdp: int = field(UINT64, subsection="cpu/fpop_ip_dp", name="env.fpdp")
    tsc_adjust: int = field(UINT64, subsection="cpu/msr_tsc_adjust", name="env.tsc_adjust")
    tsc_deadline: int = field(UINT64, subsection="cpu/msr_tscdeadline", name="env.tsc_deadline")
    msr_ia32_misc_enable: int = field(UINT64, subsection="cpu/msr_ia32_misc_enable", default=_MISC_ENABLE_DEFAULT, name="env.msr_ia32_misc_enable")
    msr_ia32_feature_control: int = field(UINT64, subsection="cpu/msr_ia32_feature_control", name="env.msr_ia32_feature_control")
    msr_fixed_ctr_ctrl: int = field(UINT64, subsection="cpu/msr_architectural_pmu", name="env.msr_fixed_ctr_ctrl")
    msr_global_ctrl: int = field(UINT64, subsection="cpu/msr_architectural_pmu", name="env.msr_global_ctrl")
    msr_global_status: int = field(UINT64, subsection="cpu/msr_architectural_pmu", name="env.msr_global_status")
    msr_global_ovf_ctrl: int = field(UINT64, subsection="cpu/msr_architectural_pmu", name="env.msr_global_ovf_ctrl")
    msr_fixed_counters: list[int] = field(array(UINT64, _FIXED_COUNTERS), subsection="cpu/msr_architectural_pmu", name="env.msr_fixed_counters")
    msr_gp_counters: list[int] = field(array(UINT64, _GP_COUNTERS), subsection="cpu/msr_architectural_pmu", name="env.msr_gp_counters")
    msr_gp_evtsel: list[int] = field(array(UINT64, _GP_COUNTERS), subsection="cpu/msr_architectural_pmu", name="env.msr_gp_evtsel")
    bnd_regs: list[BndReg] = field(array(struct(BndReg), 4), subsection="cpu/mpx", default=_list(4, BndReg), name="env.bnd_regs")
    bndcs_cfgu: int = field(UINT64, subsection="cpu/mpx", name="env.bndcs_regs.cfgu")
    bndcs_sts: int = field(UINT64, subsection="cpu/mpx", name="env.bndcs_regs.sts")
    msr_bndcfgs: int = field(UINT64, subsection="cpu/mpx", name="env.msr_bndcfgs")
    msr_hv_guest_os_id: int = field(UINT64, subsection="cpu/msr_hyperv_hypercall", name="env.msr_hv_guest_os_id")
    msr_hv_hypercall: int = field(UINT64, subsection="cpu/msr_hyperv_hypercall", name="env.msr_hv_hypercall")
    msr_hv_vapic: int = field(UINT64, subsection="cpu/msr_hyperv_vapic", name="env.msr_hv_vapic")
    msr_hv_tsc: int = field(UINT64, subsection="cpu/msr_hyperv_time", name="env.msr_hv_tsc")
    #: HV_CRASH_PARAMS
    msr_hv_crash_params: list[int] = field(array(UINT64, 5), subsection="cpu/msr_hyperv_crash", name="env.msr_hv_crash_params")
    msr_hv_runtime: int = field(UINT64, subsection="cpu/msr_hyperv_runtime", name="env.msr_hv_runtime")
    msr_hv_synic_control: int = field(UINT64, subsection="cpu/msr_hyperv_synic", name="env.msr_hv_synic_control")
    msr_hv_synic_evt_page: int = field(UINT64, subsection="cpu/msr_hyperv_synic", name="env.msr_hv_synic_evt_page")
    msr_hv_synic_msg_page: int = field(UINT64, subsection="cpu/msr_hyperv_synic", name="env.msr_hv_synic_msg_page")
    #: HV_SINT_COUNT
    msr_hv_synic_sint: list[int] = field(array(UINT64, 16), subsection="cpu/msr_hyperv_synic", name="env.msr_hv_synic_sint")
    #: HV_STIMER_COUNT
    msr_hv_stimer_config: list[int] = field(array(UINT64, 4), subsection="cpu/msr_hyperv_stimer", name="env.msr_hv_stimer_config")
    msr_hv_stimer_count: list[int] = field(array(UINT64, 4), subsection="cpu/msr_hyperv_stimer", name="env.msr_hv_stimer_count")
    msr_hv_reenlightenment_control: int = field(UINT64, subsection="cpu/msr_hyperv_reenlightenment", name="env.msr_hv_reenlightenment_control")
    msr_hv_tsc_emulation_control: int = field(UINT64, subsection="cpu/msr_hyperv_reenlightenment", name="env.msr_hv_tsc_emulation_control")
    msr_hv_tsc_emulation_status: int = field(UINT64, subsection="cpu/msr_hyperv_reenlightenment", name="env.msr_hv_tsc_emulation_status")
    #: NB_OPMASK_REGS
    opmask_regs: list[int] = field(array(UINT64, 8), subsection="cpu/avx512", name="env.opmask_regs")
    zmmh_regs: list[ZmmHReg] = field(
        array(struct(ZmmHReg), _NB_REGS), subsection="cpu/avx512", default=_list(_NB_REGS, ZmmHReg), name="env.xmm_regs[0]")
    hi16_zmm_regs: list[Hi16ZmmReg] = field(
        array(struct(Hi16ZmmReg), _NB_REGS), subsection="cpu/avx512", default=_list(_NB_REGS, Hi16ZmmReg), name="env.xmm_regs[1]")
    xss: int = field(UINT64, subsection="cpu/xss", name="env.xss")
    umwait: int = field(UINT32, subsection="cpu/umwait", name="env.umwait")
    tsc_khz: int = field(INT64, subsection="cpu/tsc_khz", name="env.tsc_khz")
    msr_smi_count: int = field(UINT64, subsection="cpu/msr_smi_count", name="env.msr_smi_count")
    pkru: int = field(UINT32, subsection="cpu/pkru", name="env.pkru")
    spec_ctrl: int = field(UINT64, subsection="cpu/spec_ctrl", name="env.spec_ctrl")
    mcg_ext_ctl: int = field(UINT64, subsection="cpu/mcg_ext_ctl", name="env.mcg_ext_ctl")
    msr_rtit_ctrl: int = field(UINT64, subsection="cpu/intel_pt", name="env.msr_rtit_ctrl")
    msr_rtit_status: int = field(UINT64, subsection="cpu/intel_pt", name="env.msr_rtit_status")
    msr_rtit_output_base: int = field(UINT64, subsection="cpu/intel_pt", name="env.msr_rtit_output_base")
    msr_rtit_output_mask: int = field(UINT64, subsection="cpu/intel_pt", name="env.msr_rtit_output_mask")
    msr_rtit_cr3_match: int = field(UINT64, subsection="cpu/intel_pt", name="env.msr_rtit_cr3_match")
    #: MAX_RTIT_ADDRS
    msr_rtit_addrs: list[int] = field(array(UINT64, 8), subsection="cpu/intel_pt", name="env.msr_rtit_addrs")
    virt_ssbd: int = field(UINT64, subsection="cpu/virt_ssbd", name="env.virt_ssbd")
    nested_cr3: int = field(UINT64, subsection="cpu/svn_npt", name="env.nested_cr3")
    nested_pg_mode: int = field(UINT32, subsection="cpu/svn_npt", name="env.nested_pg_mode")
